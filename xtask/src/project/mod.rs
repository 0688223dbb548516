//! The project under test: the pinned LiberTEM release, another release
//! from PyPI (`--libertem VERSION`), or a local checkout (`--project PATH`);
//! and the Python it is tested on.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xshell::Shell;

use crate::cli::ProjectArg;
use crate::python::{self, Choice, Python};
use crate::ui::Ui;
use crate::workspace::Workspace;

mod pypi;
mod sdist;
pub mod tree;

pub use sdist::{pinned_dir, Release};
pub use tree::{full_stamp, skipped, source_listing, source_stamp, sync_tree};

/// Where the project comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// dist-test.toml's `[project]`: its requirements are committed.
    Pinned,
    /// `--libertem VERSION`: resolved as of `resolve_date`.
    Release {
        release: Release,
        resolve_date: String,
    },
    /// `--project PATH`.
    Checkout,
}

/// Where the project's source is, where it came from, and its Python.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub source: Source,
    pub python: Python,
}

impl Project {
    /// Resolve `--project PATH`, `--libertem VERSION` or the pinned
    /// release (fetched and unpacked), then the Python: `routes` are the
    /// Pythons this machine can make a base for.
    pub fn resolve(
        sh: &Shell,
        ws: &Workspace,
        ui: Ui,
        arg: &ProjectArg,
        routes: &[String],
    ) -> Result<Project> {
        let name = &ws.config.project.name;
        let (dir, source) = match (&arg.project, &arg.libertem) {
            (Some(p), _) => (checkout(p)?, Source::Checkout),
            (None, Some(v)) if *v == ws.config.project.version && arg.resolve_date.is_none() => {
                pinned(sh, ws, ui)?
            }
            (None, Some(v)) => {
                let (dir, release) = sdist::release(sh, ws, ui, (name, v), None)?;
                let resolve_date = match (&arg.resolve_date, &release.uploaded) {
                    (Some(d), _) => check_date(d)?,
                    (None, Some(up)) => up.clone(),
                    (None, None) => {
                        bail!("PyPI gave no upload time for {name} {v}: pass --resolve-date")
                    }
                };
                (
                    dir,
                    Source::Release {
                        release,
                        resolve_date,
                    },
                )
            }
            (None, None) => pinned(sh, ws, ui)?,
        };
        let label = match &source {
            Source::Checkout => dir.display().to_string(),
            Source::Pinned => format!("{name} {}", ws.config.project.version),
            Source::Release { release, .. } => format!("{name} {}", release.version),
        };
        let python = python::choose(&Choice {
            explicit: arg.python.as_deref(),
            project: &dir,
            name: &label,
            routes,
            configured: &ws.config.image.python,
        })?;
        Ok(Project {
            dir,
            source,
            python,
        })
    }

    /// Whether this is the pinned release (its requirements are committed).
    pub fn is_pinned(&self) -> bool {
        self.source == Source::Pinned
    }

    /// The project's requirements inputs that exist: pyproject.toml first.
    pub fn pyproject(&self) -> PathBuf {
        self.dir.join("pyproject.toml")
    }
}

/// `YYYY-MM-DD` (midnight UTC, so that every machine resolves alike) or
/// an RFC 3339 time, as uv's `--exclude-newer` takes it; a day or time that
/// does not exist (2025-13-45, 25:00) is refused like a malformed one.
fn check_date(d: &str) -> Result<String> {
    let bad = || {
        anyhow::anyhow!(
            "--resolve-date {d:?} is not a date: use YYYY-MM-DD or an RFC 3339 time like 2025-07-14T10:12:09Z"
        )
    };
    if !d.contains('T') {
        let day: jiff::civil::Date = d.parse().map_err(|_| bad())?;
        return Ok(format!("{day}T00:00:00Z"));
    }
    // An offset is required: a time without one names no instant.
    let _: jiff::Timestamp = d.parse().map_err(|_| bad())?;
    Ok(d.to_string())
}

fn pinned(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<(PathBuf, Source)> {
    let p = &ws.config.project;
    let (dir, _) = sdist::release(sh, ws, ui, (&p.name, &p.version), Some(&p.sdist_sha256))?;
    Ok((dir, Source::Pinned))
}

/// A `--project` that is not a checkout, or a `--resolve-date` that is not
/// a date, said before anything else runs.
pub fn check_arg(arg: &crate::cli::ProjectArg) -> Result<()> {
    if let Some(d) = &arg.resolve_date {
        check_date(d)?;
    }
    match &arg.project {
        Some(path) => checkout(path).map(drop),
        None => Ok(()),
    }
}

/// Check that PATH is a LiberTEM-like checkout: a Python project with tests/.
pub fn checkout(path: &Path) -> Result<PathBuf> {
    let dir = fs::canonicalize(path).map_err(|_| {
        anyhow::anyhow!(
            "--project {}: no such directory; pass a LiberTEM checkout",
            path.display()
        )
    })?;
    if !dir.is_dir() {
        bail!(
            "--project {}: not a directory; pass a LiberTEM checkout",
            path.display()
        );
    }
    if !dir.join("pyproject.toml").is_file() {
        bail!(
            "--project {}: no pyproject.toml, so not a Python project; pass the root of a LiberTEM checkout",
            path.display()
        );
    }
    if !dir.join("tests").is_dir() {
        bail!(
            "--project {}: no tests/ folder; the dist suite lives in tests/",
            path.display()
        );
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_dates() {
        assert_eq!(check_date("2025-07-14").unwrap(), "2025-07-14T00:00:00Z");
        assert!(check_date("2025-07-14T10:12:09.5Z").is_ok());
        assert!(check_date("2025-07-14T10:12:09-05:00").is_ok());
        assert!(check_date("2025-07-14Tx+").is_err());
        assert!(check_date("14.7.2025").is_err());
        assert!(check_date("2025-07-14 noon").is_err());
        for impossible in [
            "2025-13-45",
            "2025-02-30",
            "2025-07-14T25:00:00Z",
            "2025-07-14T10:12:09",
        ] {
            let err = check_date(impossible).unwrap_err().to_string();
            assert!(err.contains("YYYY-MM-DD"), "{impossible}: {err}");
        }
    }

    #[test]
    fn checkout_errors_say_what_is_missing() {
        let root = crate::fsx::scratch("checkout");
        let err = checkout(&root.join("nope")).unwrap_err().to_string();
        assert!(err.contains("no such directory"), "{err}");
        let err = checkout(&root).unwrap_err().to_string();
        assert!(err.contains("no pyproject.toml"), "{err}");
        fs::write(root.join("pyproject.toml"), "[project]\n").unwrap();
        let err = checkout(&root).unwrap_err().to_string();
        assert!(err.contains("no tests/"), "{err}");
        fs::create_dir(root.join("tests")).unwrap();
        assert!(checkout(&root).is_ok());
        fs::remove_dir_all(&root).unwrap();
    }
}
