//! `cargo xtask update-reqs`: one pinned, hashed file per Python. For the
//! pinned release, every Python of `[image.suites]` (or `--python`'s);
//! for another release or a checkout, the Python it is tested on.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::checkout;
use crate::cli::{ProjectArg, UpdateReqs};
use crate::context::Invocation;
use crate::project::{Project, Source};
use crate::python::{self, Python};
use crate::reqs::{self, Upgrade};
use crate::workspace::Workspace;

impl UpdateReqs {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let ws = inv.workspace()?;
        if self.check {
            return self.check(&ws, inv);
        }
        // The checkout lock, as the build takes it: both write the
        // requirements and unpack the sdist.
        let (sh, ui) = (&inv.sh, inv.ui);
        let _lock = checkout::lock_files(&ws, "resolving requirements", inv.wait, ui)?;
        let routes = python::routes(&ws, &[]);
        let project = Project::resolve(sh, &ws, ui, &self.project, &routes)?;
        let upgrade = if self.upgrade {
            Upgrade::All
        } else if !self.upgrade_package.is_empty() {
            Upgrade::Packages(self.upgrade_package.clone())
        } else {
            Upgrade::None
        };
        for python in self.pythons(&ws, &project) {
            let project = Project {
                python,
                ..project.clone()
            };
            let start = Instant::now();
            let path = reqs::update(sh, &ws, ui, &project, &upgrade)?;
            ui.say(&format!(
                "wrote {} in {:.1} s",
                path.display(),
                start.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    }

    /// The Pythons to resolve for: `--python`'s, else every suite's for
    /// the pinned release, else the one the project is tested on.
    fn pythons(&self, ws: &Workspace, project: &Project) -> Vec<Python> {
        if self.project.python.is_none() && project.is_pinned() {
            pinned_pythons(ws)
        } else {
            vec![project.python.clone()]
        }
    }

    /// Checking needs neither the sdist nor the network.
    fn check(&self, ws: &Workspace, inv: &Invocation) -> Result<()> {
        let ProjectArg {
            project,
            libertem,
            python,
            ..
        } = &self.project;
        if libertem.is_some() {
            anyhow::bail!("--check covers the pinned release and checkouts; a --libertem release's requirements are resolved when it is tested");
        }
        let projects: Vec<Project> = match (project, python) {
            (Some(_), _) => {
                let routes = python::routes(ws, &[]);
                vec![Project::resolve(
                    &inv.sh,
                    ws,
                    inv.ui,
                    &self.project,
                    &routes,
                )?]
            }
            (None, Some(v)) => {
                let (major, minor) = crate::config::python_minor(v).context("--python")?;
                vec![pinned_on(Python {
                    version: format!("{major}.{minor}"),
                    why: "--python".into(),
                })]
            }
            (None, None) => pinned_pythons(ws).into_iter().map(pinned_on).collect(),
        };
        for project in &projects {
            reqs::check(ws, project)?;
            inv.ui.say(&format!(
                "{} is up to date",
                reqs::requirements_path(ws, project).display()
            ));
        }
        Ok(())
    }
}

/// The pinned release on `python`, as far as `--check` needs it (no sdist).
fn pinned_on(python: Python) -> Project {
    Project {
        dir: PathBuf::new(),
        source: Source::Pinned,
        python,
    }
}

/// The pinned release's Pythons: one committed file each, for every
/// Python of `[image.suites]` and every other one a file was made for
/// (`update-reqs --python 3.12` on an engine that can pull its base).
fn pinned_pythons(ws: &Workspace) -> Vec<Python> {
    let mut versions: Vec<String> = ws.config.image.suites.keys().cloned().collect();
    if let Ok(entries) = std::fs::read_dir(ws.docker_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name
                .strip_prefix("requirements-py")
                .and_then(|r| r.strip_suffix(".txt"));
            if let Some(v) = v.filter(|v| crate::config::python_minor(v).is_ok()) {
                if !versions.iter().any(|have| have == v) {
                    versions.push(v.to_string());
                }
            }
        }
    }
    versions.sort_by_key(|v| crate::config::python_minor(v).unwrap_or_default());
    versions
        .into_iter()
        .map(|version| Python {
            version,
            why: "a committed requirements file".into(),
        })
        .collect()
}
