//! The one image every service runs: its build context, the flat
//! dependency image (keyed on what it is made from) and the project on top.
//! The base it builds on comes from [`base`].

mod base;
mod keys;

use base::import_from;
pub use base::{ensure_base, fallback_tag};
use keys::{deps_key, dockerfile_stages, project_key, PROJECT_KEY_LABEL};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::context::Ctx;
use crate::downloads;
use crate::exec::{run_logged, tail_file};
use crate::fsx::{copy_if_changed, write_if_changed};
use crate::live;
use crate::project::{self, Project};
use crate::tools;
use crate::workspace::CHECKOUT_LABEL;

pub fn image_exists(sh: &Shell, docker: &Path, image: &str) -> bool {
    image_id(sh, docker, image).is_some()
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
        // In CI, a builder that exports its cache can keep this stage
        // between runs; it pulls the base itself, so a local-only base
        // (the one built from Debian's packages) rules it out.
        let (buildx, cache) = match CacheBuilder::from_env() {
            Some(c) if base == ws.config.image.base => (c.builder_args(), c.cache_args()),
            Some(c) => {
                cx.ui.say(&format!(
                    "DIST_TEST_BUILDER={} is set, but the base image {base} exists only on this \
                     engine, where that builder cannot see it: building without its cache",
                    c.name
                ));
                (vec![], vec![])
            }
            None => (vec![], vec![]),
        };
        let build = cmd!(
            sh,
            "{builder} {buildx...} build {cache...} --progress=plain --file {dockerfile} --target deps
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

    // 2. The project on top of it: an editable install, which every service
    //    completes by mounting the live source at /src. It depends on the
    //    project's build files only, so it is rebuilt when they (or the
    //    dependencies) change, and a source edit costs no build at all.
    let tag = ws.image_tag();
    let project_stage = dockerfile_stages(&dockerfile)?.1;
    let probe = context.join("probe.py");
    let project_key = project_key(&project.dir, &flat, &project_stage, &[&probe])?;
    let key_label = format!("{PROJECT_KEY_LABEL}={project_key}");
    if image_label(sh, docker, &tag, PROJECT_KEY_LABEL).as_deref() == Some(project_key.as_str()) {
        return Ok(());
    }
    project::sync_tree(&project.dir, &context.join("project"))
        .with_context(|| format!("copying {} into the build context", project.dir.display()))?;
    let deps_arg = format!("DEPS_IMAGE={flat}");
    let build = cmd!(
        sh,
        "{builder} build --progress=plain --file {dockerfile} --target project --tag {tag}
         --label {label} --label {key_label} --build-arg {base_arg} --build-arg {deps_arg}
         {proxy...} {context}"
    )
    .env("DOCKER_BUILDKIT", "1");
    let project_log = log.with_extension("project.log");
    live::status("project: installing it (editable)", Some(&project_log));
    replacing(sh, docker, &tag, || {
        run_logged(build.into(), &project_log, verbose).context("building the project image")
    })
}

fn image_label(sh: &Shell, docker: &Path, image: &str, label: &str) -> Option<String> {
    inspect(
        sh,
        docker,
        image,
        &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
    )
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

pub fn image_id(sh: &Shell, docker: &Path, image: &str) -> Option<String> {
    inspect(sh, docker, image, "{{.Id}}")
}

/// `docker image inspect --format FORMAT IMAGE`, trimmed; `None` when the
/// image is not there.
fn inspect(sh: &Shell, docker: &Path, image: &str, format: &str) -> Option<String> {
    cmd!(sh, "{docker} image inspect --format {format} {image}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|s| s.trim().to_string())
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

/// The path of this image's build log inside a run folder.
pub fn build_log(dir: &Path) -> PathBuf {
    dir.join("build.log")
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
