//! The one image every service runs: its build context, the Python
//! runtime it runs with (a volume, see [`crate::runtime`]) and the project
//! on the base, tagged for the project it was built from. The base comes
//! from [`base`]. Called with the checkout lock held: the context, the tags
//! and the removal of replaced images are shared by the checkout's commands.
//!
//! Each project (the pinned release, or a `--project` folder) has its own
//! tag, `<checkout>:py<X.Y>-p<hash of its folder>`, so that two runs of one
//! checkout with different projects never retag each other's image; a run
//! then uses its image by id, whatever the tag points at later. A rebuild
//! removes the image its tag pointed at before, and the checkout's untagged
//! images, once no container and no run in progress uses them.

mod base;
mod keys;
pub mod preload;

pub use base::{check_route, ensure_base, fallback_tag};
use keys::project_key;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkout::{self, runs};
use crate::cluster::spec::Image;
use crate::digest::sha256_bytes;
use crate::docker::{label_filter, Docker, OneShot, LONG};
use crate::downloads;
use crate::exec::run_logged;
use crate::footprint::{self, cache};
use crate::fsx::{copy_if_changed, write_if_changed};
use crate::interrupt;
use crate::labels::{
    BASE_LABEL, CHECKOUT_LABEL, HOST_LABEL, IMAGE_RUNTIME_LABEL, PROJECT_KEY_LABEL, PROJECT_LABEL,
    ROOT_LABEL,
};
use crate::live;
use crate::project::{self, Project};
use crate::runtime;
use crate::tools;
use crate::workspace::Workspace;

/// The tag of `project`'s image on `python` in this checkout:
/// `<checkout>:py3.14-p<hash of the project's folder>`.
pub fn project_tag(checkout_id: &str, project: &Path, python: &str) -> String {
    let hash = &sha256_bytes(project.to_string_lossy().as_bytes())[..12];
    format!("{checkout_id}:py{python}-p{hash}")
}

/// The base image, the runtime volume, then the image every service runs:
/// only what changed is made again (the context is synced file by file,
/// and the runtime and the image are each keyed on their inputs).
pub fn build(
    docker: &Docker,
    ws: &Workspace,
    project: &Project,
    requirements: &Path,
    log: &Path,
) -> Result<Image> {
    let python = &project.python.version;
    let base = ensure_base(docker, ws, python)
        .with_context(|| format!("preparing the base image of Python {python}"))?;
    interrupt::check()?;
    let context = sync_context(docker, ws, requirements)?;
    let base_id = docker
        .image_id(&base)
        .context("inspecting the base image")?;
    let inputs = runtime::Inputs {
        base_id: &base_id,
        base: &base,
        requirements: &context.join("requirements.txt"),
        uv: &context.join("uv"),
    };
    let runtime = runtime::ensure(docker, ws, &inputs, log)?;
    interrupt::check()?;
    let on = On {
        context,
        base,
        runtime,
    };
    let image = ensure_project(docker, ws, project, &on, log)?;
    remove_unused(docker, ws, &image);
    runtime::remove_unused(docker, ws, || footprint::volumes_in_use(docker));
    if !docker.volume_exists(&image.runtime) {
        anyhow::bail!(
            "the runtime volume {} was removed while this build ran (another checkout's `clean` \
             or build): run the command again",
            image.runtime
        );
    }
    Ok(image)
}

/// The harness's files in the image (the Dockerfile copies them to
/// /opt/dist-test): the readiness probe, the warm start of workers and
/// engines, the snapshot taken at a deadline, and the hook that makes every
/// Python process give its stacks on request.
const HELPERS: &[&str] = &[
    "probe.py",
    "warm_start.py",
    "warm_preload.py",
    "snapshot.py",
    "dist_test_stacks.py",
    "dist-test-stacks.pth",
];

/// `target/dist-test/context`: the requirements' body, the image's uv and
/// the readiness probe (the project is synced only when its stage builds).
fn sync_context(docker: &Docker, ws: &Workspace, requirements: &Path) -> Result<PathBuf> {
    let context = ws.target.join("context");
    fs::create_dir_all(&context).with_context(|| format!("creating {}", context.display()))?;
    let reqs_text = fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    write_if_changed(
        &context.join("requirements.txt"),
        crate::reqs::body(&reqs_text).as_bytes(),
    )?;
    let uv = downloads::uv_for_image(docker.shell(), ws, docker.ui())?;
    copy_if_changed(&uv, &context.join("uv"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(context.join("uv"), fs::Permissions::from_mode(0o755))?;
    }
    for helper in HELPERS {
        copy_if_changed(&ws.docker_dir().join(helper), &context.join(helper))?;
    }
    Ok(context)
}

fn common_build_args(dockerfile: &Path, base: &str) -> Vec<String> {
    let mut args = vec![
        "--file".to_string(),
        dockerfile.display().to_string(),
        "--build-arg".into(),
        format!("BASE_IMAGE={base}"),
    ];
    args.extend(tools::proxy_build_args());
    args
}

/// What the project image is built on and runs with.
struct On {
    context: PathBuf,
    base: String,
    /// The runtime volume.
    runtime: String,
}

/// The project on the base: an editable install, which every service
/// completes by mounting the live source at /src, and runs with the
/// runtime volume. It depends on the project's build files only, so it is
/// rebuilt when they (or the runtime) change, and a source edit costs no
/// build at all.
fn ensure_project(
    docker: &Docker,
    ws: &Workspace,
    project: &Project,
    on: &On,
    log: &Path,
) -> Result<Image> {
    let context = &on.context;
    let tag = project_tag(&ws.checkout_id, &project.dir, &project.python.version);
    let (dockerfile, stage) = dockerfile(ws, context)?;
    let ours: Vec<PathBuf> = HELPERS.iter().map(|h| context.join(h)).collect();
    let ours: Vec<&Path> = ours.iter().map(PathBuf::as_path).collect();
    let key = project_key(&project.dir, &on.runtime, &stage, &ours)?;
    let image = |id: String| Image {
        preload: preload::of(docker, ws, &id, &on.runtime),
        id,
        tag: tag.clone(),
        runtime: on.runtime.clone(),
    };
    if docker.image_label(&tag, PROJECT_KEY_LABEL).as_deref() == Some(key.as_str()) {
        let id = docker
            .image_id(&tag)
            .with_context(|| format!("inspecting {tag}"))?;
        return Ok(image(id));
    }
    // Another project of this checkout with the same build files on the
    // same runtime (a copy of the release, a worktree at the same version):
    // its image is this one's too, since the services mount the source.
    if let Some(id) = same_key(docker, ws, &key) {
        let before = docker.image_id(&tag);
        docker
            .tag(&id, &tag)
            .with_context(|| format!("tagging {tag}"))?;
        if let Some(old) = before.filter(|old| *old != id) {
            remove_if_unused(docker, ws, &old);
        }
        return Ok(image(id));
    }
    project::sync_tree(&project.dir, &context.join("project"))
        .with_context(|| format!("copying {} into the build context", project.dir.display()))?;
    let project_log = log.with_extension("project.log");
    live::status("project: installing it (editable)", Some(&project_log));
    install_project(docker, ws, on, &project_log)?;
    let before = docker.image_id(&tag);
    let mut args: Vec<String> = ["--progress=plain", "--target", "project", "--tag", &tag]
        .map(String::from)
        .to_vec();
    for label in [
        format!("{CHECKOUT_LABEL}={}", ws.checkout_id),
        format!("{PROJECT_KEY_LABEL}={key}"),
        format!("{IMAGE_RUNTIME_LABEL}={}", on.runtime),
        format!("{PROJECT_LABEL}={tag}"),
        format!("{BASE_LABEL}={}", on.base),
        format!("{ROOT_LABEL}={}", ws.root.display()),
        format!("{HOST_LABEL}={}", crate::workspace::this_host()),
    ] {
        args.extend(["--label".to_string(), label]);
    }
    args.extend(common_build_args(&dockerfile, &on.base));
    args.push(context.display().to_string());
    let build = docker.build_command(&[], &args)?;
    let build_log = log.with_extension("image.log");
    run_logged(build, &build_log, docker.ui().verbose, LONG)
        .context("building the project image")?;
    let id = docker
        .image_id(&tag)
        .with_context(|| format!("inspecting {tag}"))?;
    if let Some(old) = before.filter(|old| *old != id) {
        remove_if_unused(docker, ws, &old);
    }
    let bound = ws.config.image.build_cache_mb * 1_000_000;
    if let Err(e) = cache::trim(docker, bound) {
        docker
            .ui()
            .say(&format!("build cache: not trimmed ({e:#})"));
    }
    Ok(image(id))
}

/// An image of this checkout built from the project key `key`, if any.
fn same_key(docker: &Docker, ws: &Workspace, key: &str) -> Option<String> {
    let filters = [
        label_filter(CHECKOUT_LABEL, &ws.checkout_id),
        label_filter(PROJECT_KEY_LABEL, key),
    ];
    let rows = docker.images(&filters, false).ok()?;
    rows.into_iter().next().map(|r| r.id)
}

/// The project stage's Dockerfile, written into the context with this
/// checkout's name where its build cache records carry their owner (see
/// [`cache`]): its path and text.
fn dockerfile(ws: &Workspace, context: &Path) -> Result<(PathBuf, String)> {
    let template = ws.docker_dir().join("Dockerfile");
    let text = fs::read_to_string(&template)
        .with_context(|| format!("reading {}", template.display()))?
        .replace(cache::PLACEHOLDER, &ws.checkout_id);
    let path = context.join("Dockerfile");
    write_if_changed(&path, text.as_bytes())?;
    Ok((path, text))
}

/// The project's editable install into `context/project-site`, made by uv
/// in a container of the base with the runtime mounted (its build backend
/// is among the pins, so offline and without build isolation), from the
/// context's copy of the project mounted at /src, where the install points.
/// As the owner of the checkout's `target/`, so that the files stay theirs.
fn install_project(docker: &Docker, ws: &Workspace, on: &On, log: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let context = &on.context;
    let site = context.join("project-site");
    if site.exists() {
        fs::remove_dir_all(&site).with_context(|| format!("removing {}", site.display()))?;
    }
    fs::create_dir_all(&site).with_context(|| format!("creating {}", site.display()))?;
    let owner = fs::metadata(&ws.target)?;
    let user = format!("{}:{}", owner.uid(), owner.gid());
    let one = OneShot {
        name: None,
        image: &on.base,
        user: &user,
        volumes: vec![
            format!("{}:/venv:ro", on.runtime),
            format!("{}:/opt/uv/bin/uv:ro", context.join("uv").display()),
            format!("{}:/src", context.join("project").display()),
            format!("{}:/opt/dist-test/project-site", site.display()),
        ],
        env: vec!["HOME=/tmp".into()],
        labels: checkout::helper_labels(ws),
        command: [
            "/opt/uv/bin/uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            "/venv/bin/python",
            "--target",
            "/opt/dist-test/project-site",
            "--no-deps",
            "--no-build-isolation",
            "--offline",
            "--no-cache",
            "--editable",
            "/src",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    docker
        .one_shot(&one, Some(log), LONG)
        .context("installing the project (editable) against the runtime")?;
    // uv's lock of the target, and the backend's build folder.
    let _ = fs::remove_file(site.join(".lock"));
    let _ = fs::remove_dir_all(context.join("project/build"));
    Ok(())
}

/// Remove an image unless a run in progress uses it (Docker itself refuses
/// one a container uses).
fn remove_if_unused(docker: &Docker, ws: &Workspace, id: &str) {
    let (in_use, _) = runs::in_use(ws);
    if !in_use.iter().any(|i| i == id) {
        docker.image_rm(id);
    }
}

/// The checkout's images nothing needs any more: untagged project images
/// (a rebuild replaced them while a cluster still ran them), and what
/// earlier versions of this harness made that nothing asks for now:
/// project images tagged before tags named the Python (`:p<hash>`), and
/// flattened dependency images (the runtime is a volume now).
fn remove_unused(docker: &Docker, ws: &Workspace, current: &Image) {
    let label = label_filter(CHECKOUT_LABEL, &ws.checkout_id);
    let dangling = docker
        .images(&[label.clone(), "dangling=true".into()], true)
        .unwrap_or_default();
    for row in dangling.iter().filter(|r| r.id != current.id) {
        remove_if_unused(docker, ws, &row.id);
    }
    let Ok(all) = docker.images(&[label], false) else {
        return;
    };
    let (in_use, _) = runs::in_use(ws);
    let flat = format!("{}-deps-flat", ws.checkout_id);
    for r in &all {
        // `:p<hash>`, before tags named the Python (not `:py…`, nor the
        // tests' tool images, `:chromium-…`).
        let untagged_python =
            r.repository == ws.checkout_id && r.tag.starts_with('p') && !r.tag.starts_with("py");
        if (untagged_python || r.repository == flat) && !in_use.contains(&r.id) {
            docker.image_rm(&r.reference());
        }
    }
}
