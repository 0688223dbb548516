//! The base image and the one image every service runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::context::Ctx;
use crate::digest::sha256_bytes;
use crate::exec::{self, run_logged};
use crate::project::{self, Project};
use crate::tools;
use crate::workspace::{Workspace, CHECKOUT_LABEL};

const BASE_REPO: &str = "libertem-dist-base";
const FALLBACK_PACKAGES: &str = "python3,python3-venv,ca-certificates";

/// The base image to build on: the configured one if present or pullable,
/// else an equivalent one built from Debian's packages (cached by recipe).
pub fn ensure_base(cx: &Ctx) -> Result<String> {
    let (sh, tools, ws) = (cx.sh, &cx.tools, &cx.ws);
    let cfg = &ws.config.image;
    let docker = &tools.docker.cli;
    if image_exists(sh, docker, &cfg.base) {
        check_python(sh, docker, &cfg.base, &cfg.python)?;
        return Ok(cfg.base.clone());
    }
    let fallback = fallback_tag(ws);
    if image_exists(sh, docker, &fallback) {
        return Ok(fallback);
    }
    let base = &cfg.base;
    if cmd!(sh, "{docker} pull --quiet {base}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        check_python(sh, docker, base, &cfg.python)?;
        return Ok(base.clone());
    }
    cx.ui.say(&format!(
        "{base} cannot be pulled; building {fallback} from Debian's packages"
    ));
    build_fallback(cx, &fallback)?;
    check_python(sh, docker, &fallback, &cfg.python)?;
    Ok(fallback)
}

/// `libertem-dist-base:bookworm-py3.11-<recipe hash>`: a new recipe, a new tag.
pub fn fallback_tag(ws: &Workspace) -> String {
    let cfg = &ws.config.image;
    let recipe = format!(
        "debootstrap --variant=minbase --include={FALLBACK_PACKAGES} {} {}\npython {}\nwithout docs\n",
        cfg.fallback_suite, cfg.fallback_mirror, cfg.python
    );
    format!(
        "{BASE_REPO}:{}-py{}-{}",
        cfg.fallback_suite,
        cfg.python,
        &sha256_bytes(recipe.as_bytes())[..10]
    )
}

pub fn image_exists(sh: &Shell, docker: &Path, image: &str) -> bool {
    image_id(sh, docker, image).is_some()
}

fn check_python(sh: &Shell, docker: &Path, image: &str, want: &str) -> Result<()> {
    let code = "import sys; print('%d.%d' % sys.version_info[:2])";
    let got = cmd!(
        sh,
        "{docker} run --rm --network none --entrypoint python3 {image} -c {code}"
    )
    .quiet()
    .read()
    .with_context(|| format!("running python3 in the base image {image}"))?;
    if got.trim() != want {
        bail!(
            "the base image {image} has Python {}, but image.python is {want}: \
             pick a base with Python {want} or change image.python and run `cargo xtask update-reqs`",
            got.trim()
        );
    }
    Ok(())
}

fn build_fallback(cx: &Ctx, tag: &str) -> Result<()> {
    let (sh, tools, ws) = (cx.sh, &cx.tools, &cx.ws);
    let cfg = &ws.config.image;
    let Ok(debootstrap) = which::which("debootstrap") else {
        bail!(
            "the base image {} cannot be pulled and debootstrap is not installed to build one: \
             install it (`apt-get install debootstrap`) or make {} available (`docker pull` / `docker load`)",
            cfg.base,
            cfg.base
        );
    };
    let uid = cmd!(sh, "id -u").quiet().read().unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "the base image {} cannot be pulled, and building one with debootstrap needs root: \
             run `sudo cargo xtask build` once, or make {} available (`docker pull` / `docker load`)",
            cfg.base,
            cfg.base
        );
    }
    let rootfs = ws.target.join("base-rootfs");
    let _ = fs::remove_dir_all(&rootfs);
    let (suite, mirror) = (&cfg.fallback_suite, &cfg.fallback_mirror);
    let include = format!("--include={FALLBACK_PACKAGES}");
    let log = ws.target.join("base-debootstrap.log");
    let result = run_logged(
        cmd!(
            sh,
            "{debootstrap} --variant=minbase {include} {suite} {rootfs} {mirror}"
        )
        .into(),
        &log,
        false,
    )
    .and_then(|()| {
        // Drop documentation, as slim images do, and apt's caches.
        for sub in [
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
        ] {
            let _ = fs::remove_dir_all(rootfs.join(sub));
        }
        for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let dir = rootfs.join(sub);
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.path().is_file() {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        let docker = &tools.docker.cli;
        let label = format!("LABEL {CHECKOUT_LABEL}.base={suite}");
        let path_env = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let mut tar = Command::new("tar");
        tar.arg("-C").arg(&rootfs).args(["-c", "."]);
        import_from(docker, tar, &[path_env, "CMD [\"python3\"]", &label], tag)?;
        Ok(())
    })
    .with_context(|| format!("building the base image {tag} (log: {})", log.display()));
    let _ = fs::remove_dir_all(&rootfs);
    result
}

/// `producer | docker import --change C... - TAG`, both ends checked.
fn import_from(docker: &Path, producer: Command, changes: &[&str], tag: &str) -> Result<()> {
    let mut import = Command::new(docker);
    import.arg("import");
    for change in changes {
        import.args(["--change", change]);
    }
    import.args(["-", tag]);
    exec::pipe(producer, import).with_context(|| format!("importing into {tag}"))
}

/// Lay out the build context and build the image. Only what changed is rebuilt:
/// the context is synced file by file, and BuildKit caches by content.
pub fn build(
    cx: &Ctx,
    project: &Project,
    requirements: &Path,
    base: &str,
    log: &Path,
) -> Result<()> {
    let (sh, tools, ws, verbose) = (cx.sh, &cx.tools, &cx.ws, cx.ui.verbose);
    let builder = tools.docker.builder()?;
    let context = ws.target.join("context");
    fs::create_dir_all(&context).with_context(|| format!("creating {}", context.display()))?;
    let reqs_text = fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    write_if_changed(
        &context.join("requirements.txt"),
        crate::reqs::body(&reqs_text).as_bytes(),
    )?;
    copy_if_changed(&ws.docker_dir().join("probe.py"), &context.join("probe.py"))?;
    project::sync_tree(&project.dir, &context.join("project"))
        .with_context(|| format!("copying {} into the build context", project.dir.display()))?;

    let dockerfile = ws.docker_dir().join("Dockerfile");
    let label = format!("{CHECKOUT_LABEL}={}", ws.checkout_id);
    let base_arg = format!("BASE_IMAGE={base}");
    let secret: Vec<String> = match tools::ca_bundle() {
        Some(p) => vec![
            "--secret".into(),
            format!("id=ca_bundle,src={}", p.display()),
        ],
        None => vec![],
    };
    let proxy = tools::proxy_build_args();
    let proxy_args = &proxy;

    // 1. The deps stage: cached by BuildKit, so instant unless requirements changed.
    let deps_tag = format!("{}-deps:latest", ws.checkout_id);
    let build = cmd!(
        sh,
        "{builder} build --progress=plain --file {dockerfile} --target deps --tag {deps_tag}
         --label {label} --build-arg {base_arg} {secret...} {proxy_args...} {context}"
    )
    .env("DOCKER_BUILDKIT", "1");
    let docker = &tools.docker.cli;
    replacing(sh, docker, &deps_tag, || {
        run_logged(build.into(), log, verbose).context("building the dependency image")
    })?;

    // 2. Flatten it into one layer, once per deps image: the project layer then
    //    sits on a single layer, which keeps its export fast where the storage
    //    driver has no native diff (fuse-overlayfs, overlay2 with redirect_dir).
    let flat = flatten_once(sh, &tools.docker.cli, ws, &deps_tag)?;

    // 3. The project stage on top of it.
    let tag = ws.image_tag();
    let deps_arg = format!("DEPS_IMAGE={flat}");
    let build = cmd!(
        sh,
        "{builder} build --progress=plain --file {dockerfile} --target project --tag {tag}
         --label {label} --build-arg {base_arg} --build-arg {deps_arg} {proxy...} {context}"
    )
    .env("DOCKER_BUILDKIT", "1");
    let project_log = log.with_extension("project.log");
    replacing(sh, docker, &tag, || {
        run_logged(build.into(), &project_log, verbose).context("building the project image")
    })
}

/// Run `build`, which (re)tags `tag`; then remove the image the tag pointed
/// at before, so that rebuilds do not pile up untagged images. An image that
/// a container still uses (a kept cluster) is left alone by docker.
fn replacing(
    sh: &Shell,
    docker: &Path,
    tag: &str,
    build: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let before = image_id(sh, docker, tag);
    build()?;
    if let (Some(old), Some(new)) = (before, image_id(sh, docker, tag)) {
        if old != new {
            let _ = cmd!(sh, "{docker} image rm {old}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
    }
    Ok(())
}

fn image_id(sh: &Shell, docker: &Path, image: &str) -> Option<String> {
    let format = "{{.Id}}";
    cmd!(sh, "{docker} image inspect --format {format} {image}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|s| s.trim().to_string())
}

/// `<checkout>-deps-flat:<deps image id>`, made with export | import when it
/// does not exist yet; older flat images of this checkout are removed.
fn flatten_once(sh: &Shell, docker: &Path, ws: &Workspace, deps_tag: &str) -> Result<String> {
    let id = image_id(sh, docker, deps_tag).context("inspecting the dependency image")?;
    let short: String = id
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    let repo = format!("{}-deps-flat", ws.checkout_id);
    let flat = format!("{repo}:{short}");
    if image_exists(sh, docker, &flat) {
        return Ok(flat);
    }
    let container = cmd!(sh, "{docker} create {deps_tag} true")
        .quiet()
        .read()
        .context("creating a container to flatten")?;
    let container = container.trim().to_string();
    let label = format!("LABEL {CHECKOUT_LABEL}={}", ws.checkout_id);
    let mut export = Command::new(docker);
    export.args(["export", &container]);
    let result = import_from(docker, export, &[&label], &flat)
        .with_context(|| format!("flattening {deps_tag} into {flat}"));
    let _ = cmd!(sh, "{docker} rm --force {container}")
        .quiet()
        .ignore_stdout()
        .run();
    result?;
    // Superseded flat images only take disk.
    let format = "{{.Repository}}:{{.Tag}}";
    let old = cmd!(sh, "{docker} image ls --format {format} {repo}")
        .quiet()
        .read()
        .unwrap_or_default();
    for img in old
        .lines()
        .map(str::trim)
        .filter(|i| !i.is_empty() && *i != flat)
    {
        let _ = cmd!(sh, "{docker} image rm {img}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
    Ok(flat)
}

fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let new = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_if_changed(to, &new)
}

fn write_if_changed(to: &Path, new: &[u8]) -> Result<()> {
    if fs::read(to).ok().as_deref() != Some(new) {
        fs::write(to, new).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(())
}

/// The path of this image's build log inside a run folder.
pub fn build_log(dir: &Path) -> PathBuf {
    dir.join("build.log")
}
