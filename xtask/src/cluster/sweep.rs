//! Removal by label, for what no compose project file describes any more:
//! leftovers of a half-done teardown, and every cluster of a checkout
//! (`down --all`).

use std::path::Path;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::PROJECT_LABEL;
use crate::workspace::CHECKOUT_LABEL;

/// Remove containers, then networks, then volumes matching a docker filter.
/// Returns how many objects were left after the attempt.
pub fn sweep(sh: &Shell, docker: &Path, filter: &str) -> Result<usize> {
    // (list, remove), in the order they can go: containers hold networks and volumes.
    const KINDS: [(&[&str], &[&str]); 3] = [
        (&["ps", "--all", "--quiet"], &["rm", "--force", "--volumes"]),
        (&["network", "ls", "--quiet"], &["network", "rm"]),
        (&["volume", "ls", "--quiet"], &["volume", "rm", "--force"]),
    ];
    let ids = |list: &[&str]| -> Vec<String> {
        cmd!(sh, "{docker} {list...} --filter {filter}")
            .quiet()
            .read()
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    let mut removed = Vec::new();
    for (list, remove) in KINDS {
        let found = ids(list);
        if !found.is_empty() {
            let _ = cmd!(sh, "{docker} {remove...} {found...}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
            removed.push(list);
        }
    }
    // A kind that had nothing matching has nothing left (the usual case,
    // after compose's own teardown): only the others are listed again.
    Ok(removed.into_iter().map(|list| ids(list).len()).sum())
}

/// Compose projects of this checkout that have anything left on the engine.
pub fn checkout_projects(sh: &Shell, docker: &Path, checkout_id: &str) -> Result<Vec<String>> {
    let filter = format!("label={CHECKOUT_LABEL}={checkout_id}");
    let format = format!("{{{{.Label \"{PROJECT_LABEL}\"}}}}");
    let mut projects = Vec::new();
    for args in [
        vec!["ps", "--all"],
        vec!["network", "ls"],
        vec!["volume", "ls"],
    ] {
        let out = cmd!(sh, "{docker} {args...} --filter {filter} --format {format}")
            .quiet()
            .read()
            .context("listing this checkout's clusters")?;
        for p in out.lines().map(str::trim).filter(|p| !p.is_empty()) {
            if !projects.iter().any(|q| q == p) {
                projects.push(p.to_string());
            }
        }
    }
    Ok(projects)
}
