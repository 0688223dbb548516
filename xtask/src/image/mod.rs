//! The one image every service runs: its build context, the flat
//! dependency image (keyed on what it is made from) and the project on top,
//! tagged for the project it was built from. The base it builds on comes
//! from [`base`]. Called with the checkout lock held: the context, the tags
//! and the removal of replaced images are shared by the checkout's commands.
//!
//! Each project (the pinned release, or a `--project` folder) has its own
//! tag, `<checkout>:p<hash of its folder>`, so that two runs of one
//! checkout with different projects never retag each other's image; a run
//! then uses its image by id, whatever the tag points at later. A rebuild
//! removes the image its tag pointed at before, and the checkout's untagged
//! images, once no container and no run in progress uses them.

mod base;
mod keys;

use base::BASE_REPO;
pub use base::{check_route, ensure_base, fallback_tag};
use keys::{
    deps_key, dockerfile_stages, project_key, DEPS_LABEL, PROJECT_KEY_LABEL, PROJECT_LABEL,
};

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkout::runs;
use crate::cluster::Image;
use crate::context::Ctx;
use crate::digest::sha256_bytes;
use crate::docker::{label_filter, LONG};
use crate::downloads;
use crate::exec::{run_logged, tail_file};
use crate::fsx::{copy_if_changed, write_if_changed};
use crate::interrupt;
use crate::live;
use crate::project::{self, Project};
use crate::tools;
use crate::workspace::CHECKOUT_LABEL;

/// The tag of `project`'s image on `python` in this checkout:
/// `<checkout>:py3.14-p<hash of the project's folder>`.
pub fn project_tag(checkout_id: &str, project: &Path, python: &str) -> String {
    let hash = &sha256_bytes(project.to_string_lossy().as_bytes())[..12];
    format!("{checkout_id}:py{python}-p{hash}")
}

/// The base image, then the image every service runs: only what changed is
/// rebuilt (the context is synced file by file, BuildKit caches by content,
/// and each image is keyed on its inputs).
pub fn build(cx: &Ctx, project: &Project, requirements: &Path, log: &Path) -> Result<Image> {
    let python = &project.python.version;
    let base = ensure_base(cx, python)
        .with_context(|| format!("preparing the base image of Python {python}"))?;
    interrupt::check()?;
    let context = sync_context(cx, requirements)?;
    let flat = ensure_deps(cx, &context, &base, log)?;
    let deps = Deps {
        context,
        base,
        flat,
    };
    let image = ensure_project(cx, project, &deps, log)?;
    remove_unused(cx, &image);
    Ok(image)
}

/// `target/dist-test/context`: the requirements' body, the image's uv and
/// the readiness probe (the project is synced only when its stage builds).
fn sync_context(cx: &Ctx, requirements: &Path) -> Result<PathBuf> {
    let ws = &cx.ws;
    let context = ws.target.join("context");
    fs::create_dir_all(&context).with_context(|| format!("creating {}", context.display()))?;
    let reqs_text = fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    write_if_changed(
        &context.join("requirements.txt"),
        crate::reqs::body(&reqs_text).as_bytes(),
    )?;
    let uv = downloads::uv_for_image(cx.sh, ws, cx.ui)?;
    copy_if_changed(&uv, &context.join("uv"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(context.join("uv"), fs::Permissions::from_mode(0o755))?;
    }
    copy_if_changed(&ws.docker_dir().join("probe.py"), &context.join("probe.py"))?;
    Ok(context)
}

/// The dependencies as one flat image, made once per set of inputs:
/// BuildKit runs the deps stage (its RUN cached by content) and streams the
/// stage's whole file system into `docker import`. The project layer then
/// sits on a single layer, which keeps its export fast where the storage
/// driver has no native diff (fuse-overlayfs, overlay2 with redirect_dir).
/// The import goes to a tag of this process first and is renamed once
/// whole: a run killed half-way leaves no image under the key.
fn ensure_deps(cx: &Ctx, context: &Path, base: &str, log: &Path) -> Result<String> {
    let (docker, ws) = (&cx.docker, &cx.ws);
    let dockerfile = ws.docker_dir().join("Dockerfile");
    let base_id = docker.image_id(base).context("inspecting the base image")?;
    let key = deps_key(context, &dockerfile, &base_id)?;
    let repo = format!("{}-deps-flat", ws.checkout_id);
    let flat = format!("{repo}:{key}");
    if docker.image_exists(&flat) {
        return Ok(flat);
    }
    let reqs = fs::read_to_string(context.join("requirements.txt"))?;
    let pins = reqs
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .count();
    live::status(
        format!("dependencies: {pins} pinned packages (uv)"),
        Some(log),
    );
    let (buildx, cache) = cache_builder(cx, base);
    let mut args: Vec<String> = cache;
    args.extend(
        [
            "--progress=plain",
            "--target",
            "deps",
            "--output",
            "type=tar,dest=-",
        ]
        .map(String::from),
    );
    args.extend(common_build_args(&dockerfile, base));
    args.extend(secret_args());
    args.push(context.display().to_string());
    let mut build = docker.build_command(&buildx, &args)?;
    if cx.ui.verbose {
        eprintln!("$ {build:?}");
    }
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    build.stderr(file);
    let label_change = format!("LABEL {CHECKOUT_LABEL}={}", ws.checkout_id);
    let partial = format!("{repo}:partial-{}", std::process::id());
    let imported = docker
        .import(build, &[&label_change], &partial, LONG)
        .and_then(|()| docker.tag(&partial, &flat));
    docker.image_rm(&partial);
    imported.with_context(|| {
        format!(
            "building the dependency image; last lines of {}:\n{}",
            log.display(),
            tail_file(log, 25)
        )
    })?;
    Ok(flat)
}

/// In CI, a builder that exports its cache can keep the deps stage between
/// runs; it pulls the base itself, so a local-only base (the one built
/// from Debian's packages) rules it out. `(buildx args, cache args)`.
fn cache_builder(cx: &Ctx, base: &str) -> (Vec<String>, Vec<String>) {
    match CacheBuilder::from_env() {
        Some(c) if !base.starts_with(BASE_REPO) => (c.builder_args(), c.cache_args()),
        Some(c) => {
            cx.ui.say(&format!(
                "DIST_TEST_BUILDER={} is set, but the base image {base} exists only on this \
                 engine, where that builder cannot see it: building without its cache",
                c.name
            ));
            (vec![], vec![])
        }
        None => (vec![], vec![]),
    }
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

/// The host's CA bundle as a build secret: used by one RUN, in no layer.
fn secret_args() -> Vec<String> {
    match tools::ca_bundle() {
        Some(p) => vec![
            "--secret".into(),
            format!("id=ca_bundle,src={}", p.display()),
        ],
        None => vec![],
    }
}

/// What the project stage builds on.
struct Deps {
    context: PathBuf,
    base: String,
    /// The flat dependency image.
    flat: String,
}

/// The project on top of the dependency image: an editable install, which
/// every service completes by mounting the live source at /src. It depends
/// on the project's build files only, so it is rebuilt when they (or the
/// dependencies) change, and a source edit costs no build at all.
fn ensure_project(cx: &Ctx, project: &Project, deps: &Deps, log: &Path) -> Result<Image> {
    let (docker, ws) = (&cx.docker, &cx.ws);
    let (context, flat) = (&deps.context, &deps.flat);
    let dockerfile = ws.docker_dir().join("Dockerfile");
    let tag = project_tag(&ws.checkout_id, &project.dir, &project.python.version);
    let project_stage = dockerfile_stages(&dockerfile)?.1;
    let probe = context.join("probe.py");
    let key = project_key(&project.dir, flat, &project_stage, &[&probe])?;
    if docker.image_label(&tag, PROJECT_KEY_LABEL).as_deref() == Some(key.as_str()) {
        let id = docker
            .image_id(&tag)
            .with_context(|| format!("inspecting {tag}"))?;
        return Ok(Image { id, tag });
    }
    project::sync_tree(&project.dir, &context.join("project"))
        .with_context(|| format!("copying {} into the build context", project.dir.display()))?;
    let before = docker.image_id(&tag);
    let mut args: Vec<String> = ["--progress=plain", "--target", "project", "--tag", &tag]
        .map(String::from)
        .to_vec();
    for label in [
        format!("{CHECKOUT_LABEL}={}", ws.checkout_id),
        format!("{PROJECT_KEY_LABEL}={key}"),
        format!("{DEPS_LABEL}={flat}"),
        format!("{PROJECT_LABEL}={tag}"),
    ] {
        args.extend(["--label".to_string(), label]);
    }
    args.extend(common_build_args(&dockerfile, &deps.base));
    args.extend(["--build-arg".to_string(), format!("DEPS_IMAGE={flat}")]);
    args.push(context.display().to_string());
    let build = docker.build_command(&[], &args)?;
    let project_log = log.with_extension("project.log");
    live::status("project: installing it (editable)", Some(&project_log));
    run_logged(build, &project_log, cx.ui.verbose, LONG).context("building the project image")?;
    let id = docker
        .image_id(&tag)
        .with_context(|| format!("inspecting {tag}"))?;
    if let Some(old) = before.filter(|old| *old != id) {
        remove_if_unused(cx, &old);
    }
    Ok(Image { id, tag })
}

/// Remove an image unless a run in progress uses it (Docker itself refuses
/// one a container uses).
fn remove_if_unused(cx: &Ctx, id: &str) {
    let (in_use, _) = runs::in_use(&cx.ws);
    if !in_use.iter().any(|i| i == id) {
        cx.docker.image_rm(id);
    }
}

/// The checkout's images nothing needs any more: untagged project images
/// (a rebuild replaced them while a cluster still ran them), and
/// dependency images no project image of the checkout is built on.
fn remove_unused(cx: &Ctx, current: &Image) {
    let docker = &cx.docker;
    let label = label_filter(CHECKOUT_LABEL, &cx.ws.checkout_id);
    let dangling = docker
        .images(&[label.clone(), "dangling=true".into()], true)
        .unwrap_or_default();
    for row in dangling.iter().filter(|r| r.id != current.id) {
        remove_if_unused(cx, &row.id);
    }
    let repo = format!("{}-deps-flat", cx.ws.checkout_id);
    let Ok(mut all) = docker.images(&[label], false) else {
        return;
    };
    // Project images tagged before tags named the Python (`:p<hash>`):
    // nothing builds or asks for them any more.
    let (in_use, _) = runs::in_use(&cx.ws);
    all.retain(|r| {
        let old = r.repository == cx.ws.checkout_id && !r.tag.starts_with("py");
        if old && !in_use.contains(&r.id) {
            docker.image_rm(&r.reference());
        }
        !old
    });
    let wanted: Vec<String> = all
        .iter()
        .filter(|r| r.repository == cx.ws.checkout_id)
        .filter_map(|r| docker.image_label(&r.reference(), DEPS_LABEL))
        .collect();
    for row in all.iter().filter(|r| r.repository == repo) {
        if !wanted.contains(&row.reference()) {
            docker.image_rm(&row.reference());
        }
    }
}

/// A BuildKit builder that exports its cache, as CI sets it up (see
/// ci/dist-tests.yml): `DIST_TEST_BUILDER` names it, `DIST_TEST_CACHE_FROM`
/// and `DIST_TEST_CACHE_TO` are buildx's `--cache-from` / `--cache-to`
/// values (either may be empty). Used for the deps stage only.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheBuilder {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl CacheBuilder {
    pub fn from_env() -> Option<CacheBuilder> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Some(CacheBuilder {
            name: var("DIST_TEST_BUILDER")?,
            from: var("DIST_TEST_CACHE_FROM"),
            to: var("DIST_TEST_CACHE_TO"),
        })
    }

    /// What goes before `build`: `buildx --builder NAME`.
    pub fn builder_args(&self) -> Vec<String> {
        vec!["buildx".into(), "--builder".into(), self.name.clone()]
    }

    /// What goes after `build`: `--cache-from X --cache-to Y`, as set.
    pub fn cache_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (flag, v) in [("--cache-from", &self.from), ("--cache-to", &self.to)] {
            if let Some(v) = v {
                a.extend([flag.to_string(), v.clone()]);
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ci_cache_builder_goes_around_build() {
        let c = CacheBuilder {
            name: "builder-1".into(),
            from: None,
            to: Some("type=local,dest=/c,mode=max".into()),
        };
        assert_eq!(c.builder_args(), ["buildx", "--builder", "builder-1"]);
        assert_eq!(
            c.cache_args(),
            ["--cache-to", "type=local,dest=/c,mode=max"]
        );
        let both = CacheBuilder {
            from: Some("type=local,src=/c".into()),
            ..c
        };
        assert_eq!(
            both.cache_args()[..2],
            ["--cache-from", "type=local,src=/c"]
        );
    }
}
