//! The project under test: the pinned LiberTEM sdist, or a local checkout.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xshell::Shell;

use crate::ui::Ui;
use crate::workspace::Workspace;

mod sdist;
mod tree;

pub use sdist::pinned_dir;
use sdist::pinned_sdist;
pub use tree::{full_stamp, skipped, source_stamp, sync_tree};

/// Where the project's source is, and whether it is the pinned default.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub default: bool,
}

impl Project {
    /// Resolve `--project PATH`, or fetch and unpack the pinned sdist.
    pub fn resolve(sh: &Shell, ws: &Workspace, ui: Ui, path: Option<&Path>) -> Result<Project> {
        match path {
            Some(p) => Ok(Project {
                dir: checkout(p)?,
                default: false,
            }),
            None => Ok(Project {
                dir: pinned_sdist(sh, ws, ui)?,
                default: true,
            }),
        }
    }

    /// The project's requirements inputs that exist: pyproject.toml first.
    pub fn pyproject(&self) -> PathBuf {
        self.dir.join("pyproject.toml")
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
