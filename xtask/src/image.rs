//! The base image and the one image every service runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::context::Ctx;
use crate::digest::{sha256_bytes, sha256_file};
use crate::downloads;
use crate::exec::{self, run_logged, tail_file};
use crate::live;
use crate::project::{self, Project};
use crate::tools;
use crate::workspace::{Workspace, CHECKOUT_LABEL};

const BASE_REPO: &str = "libertem-dist-base";
/// Python alone: uv makes the virtual environment and fetches over the CA
/// bundle the build is given.
const FALLBACK_PACKAGES: &str = "python3";

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
    let uid = cmd!(sh, "id -u").quiet().read().unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "the base image {} cannot be pulled, and building one with debootstrap needs root: \
             run `sudo cargo xtask build` once, or make {} available (`docker pull` / `docker load`)",
            cfg.base,
            cfg.base
        );
    }
    live::status("base image: getting debootstrap", None);
    let debootstrap = downloads::debootstrap(sh, ws, cx.ui)?;
    let program = &debootstrap.program;
    let rootfs = ws.target.join("base-rootfs");
    let _ = fs::remove_dir_all(&rootfs);
    let (suite, mirror) = (&cfg.fallback_suite, &cfg.fallback_mirror);
    let include = format!("--include={FALLBACK_PACKAGES}");
    let log = ws.target.join("base-debootstrap.log");
    live::status("base image: Debian's packages (debootstrap)", Some(&log));
    let mut debootstrap_cmd = cmd!(
        sh,
        "{program} --variant=minbase {include} {suite} {rootfs} {mirror}"
    );
    if let Some(scripts) = &debootstrap.scripts {
        debootstrap_cmd = debootstrap_cmd.env("DEBOOTSTRAP_DIR", scripts);
    }
    let result = run_logged(debootstrap_cmd.into(), &log, false)
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
            live::status("base image: importing the root file system", None);
            import_from(docker, tar, &[path_env, "CMD [\"python3\"]", &label], tag)?;
            Ok(())
        })
        .with_context(|| format!("building the base image {tag} (log: {})", log.display()));
    let _ = fs::remove_dir_all(&rootfs);
    result
}

/// `producer | docker import --change C... - TAG`, both ends checked; a
/// failure leaves no image.
fn import_from(docker: &Path, producer: Command, changes: &[&str], tag: &str) -> Result<()> {
    let mut import = Command::new(docker);
    import.arg("import");
    for change in changes {
        import.args(["--change", change]);
    }
    import.args(["-", tag]);
    let piped = exec::pipe(producer, import).with_context(|| format!("importing into {tag}"));
    if piped.is_err() {
        // docker import may have made an image of a cut stream: no half-made image.
        let _ = Command::new(docker)
            .args(["image", "rm", tag])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    piped
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
    let uv = downloads::uv_for_image(sh, ws, cx.ui)?;
    copy_if_changed(&uv, &context.join("uv"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(context.join("uv"), fs::Permissions::from_mode(0o755))?;
    }
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

    // 1. The dependencies as one flat image, made once per set of inputs:
    //    BuildKit runs the deps stage (its RUN cached by content) and streams
    //    the stage's whole file system into `docker import`. The project layer
    //    then sits on a single layer, which keeps its export fast where the
    //    storage driver has no native diff (fuse-overlayfs, overlay2 with
    //    redirect_dir), and no separate deps image is exported at all.
    let docker = &tools.docker.cli;
    let base_id = image_id(sh, docker, base).context("inspecting the base image")?;
    let key = deps_key(&context, &dockerfile, &base_id)?;
    let repo = format!("{}-deps-flat", ws.checkout_id);
    let flat = format!("{repo}:{key}");
    if !image_exists(sh, docker, &flat) {
        let pins = crate::reqs::body(&reqs_text)
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
            .count();
        live::status(
            format!("dependencies: {pins} pinned packages (uv)"),
            Some(log),
        );
        let build = cmd!(
            sh,
            "{builder} build --progress=plain --file {dockerfile} --target deps
             --output type=tar,dest=- --build-arg {base_arg} {secret...} {proxy_args...} {context}"
        )
        .env("DOCKER_BUILDKIT", "1");
        let mut build: Command = build.into();
        if verbose {
            eprintln!("$ {build:?}");
        }
        let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        build.stderr(file);
        let label_change = format!("LABEL {label}");
        import_from(docker, build, &[&label_change], &flat).with_context(|| {
            format!(
                "building the dependency image; last lines of {}:\n{}",
                log.display(),
                tail_file(log, 25)
            )
        })?;
        remove_other_tags(sh, docker, &repo, &flat);
    }

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
    live::status("project: installing it offline", Some(&project_log));
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

/// What the deps stage reads, as a short digest: the Dockerfile, the files
/// of the context it mounts, and the base image.
fn deps_key(context: &Path, dockerfile: &Path, base_id: &str) -> Result<String> {
    // uv stands in by its pin (version and wheel hashes, checked when it was
    // fetched): hashing its 40 MB program on every build costs more than the
    // rest of a no-change build.
    let mut text = format!("base {base_id}\n{}", downloads::UV.requirement());
    for file in [
        dockerfile.to_path_buf(),
        context.join("requirements.txt"),
        context.join("probe.py"),
    ] {
        let digest = sha256_file(&file)?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        text.push_str(&format!("{digest} {name}\n"));
    }
    Ok(sha256_bytes(text.as_bytes())[..12].to_string())
}

/// Remove every tag of `repo` but `keep`: superseded flat images only take disk.
fn remove_other_tags(sh: &Shell, docker: &Path, repo: &str, keep: &str) {
    let format = "{{.Repository}}:{{.Tag}}";
    let old = cmd!(sh, "{docker} image ls --format {format} {repo}")
        .quiet()
        .read()
        .unwrap_or_default();
    for img in old
        .lines()
        .map(str::trim)
        .filter(|i| !i.is_empty() && *i != keep)
    {
        let _ = cmd!(sh, "{docker} image rm {img}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
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
