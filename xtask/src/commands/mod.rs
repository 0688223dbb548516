//! One module per command, each with its `run`; the steps they share are here.

mod check_ci;
mod completions;
mod dist_test;
mod doctor;
mod lifecycle;
mod swarm_cluster;
mod swarm_lab;
mod testdata;
mod update_reqs;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::ProjectArg;
use crate::context::Ctx;
use crate::image;
use crate::interrupt;
use crate::project::Project;
use crate::reqs::{self, Upgrade};

/// The project under test and its current requirements file. For the pinned
/// default a stale file is an error (it is committed); for a checkout it is
/// regenerated.
fn project_and_reqs(cx: &Ctx, arg: &ProjectArg) -> Result<(Project, PathBuf)> {
    let (sh, ws) = (cx.sh, &cx.ws);
    let project = Project::resolve(sh, ws, cx.ui, arg.project.as_deref())?;
    if project.default {
        reqs::check(ws, &project)?;
    } else if reqs::check(ws, &project).is_err() {
        cx.ui
            .say("requirements of the checkout changed: resolving them again");
        reqs::update(sh, ws, cx.ui, &project, &Upgrade::None)
            .context("resolving the checkout's requirements")?;
    }
    let path = reqs::requirements_path(ws, &project);
    Ok((project, path))
}

/// The base image, then the image every service runs.
fn build_image(cx: &Ctx, project: &Project, reqs: &Path, log: &Path) -> Result<()> {
    let base = image::ensure_base(cx).context("preparing the base image")?;
    interrupt::check()?;
    image::build(cx, project, reqs, &base, log)
}
