//! A kept cluster never runs old code. Its workers and engines import the
//! project once, when they start, and keep what they imported: after an
//! edit, a `test` would run the tests container on the new code and the
//! workers on the old, and say nothing. So `up` records the project's
//! `.py` files (their paths, sizes and times, `cluster/source.json`) before
//! the services start, and `test` compares it with the source now: when they
//! differ, the processes that imported the project restart before the
//! tests, and only those. Dask's nannies restart their workers (new
//! processes, the nannies and their containers stay); the engines are shut
//! down, waited for until the controller has dropped them, and their
//! services started again, so that readiness counts only engines that
//! registered anew. Before that, numba's cache of the edited modules and of
//! every module that imports one of them (directly or not) goes: numba
//! checks a cached function against its own file only, and a caller in an
//! unedited module would come back compiled with the old callee (a new
//! `dist-test` gets a new cache volume instead, see numba.rs). Which files
//! changed comes from the listing `up` (and each restart) saved beside the
//! state. The scheduler and the controller run no project code and keep
//! running. The listing is taken before the restart: an edit made
//! during it restarts them again on the next `test`, never too few times.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::checkout::kept::ClusterState;
use crate::context::Ctx;
use crate::fsx;
use crate::project::source_listing;
use crate::workspace::Workspace;

/// What `probe.py restart` reports.
#[derive(Debug, Deserialize, PartialEq)]
struct Restarted {
    workers: usize,
    engines_stopped: usize,
    numba_cache_files_removed: usize,
}

/// The project's `.py` files as the workers and engines imported them
/// (path: `size mtime`), beside the kept cluster's state: which files an
/// edit changed decides which part of numba's cache goes.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    pub files: BTreeMap<String, String>,
}

impl Imported {
    pub fn path(ws: &Workspace) -> PathBuf {
        ws.cluster_dir().join("source.json")
    }

    /// The project's files now.
    pub fn of(project: &Path) -> Result<Imported> {
        let files = source_listing(project)
            .with_context(|| format!("reading the source of {}", project.display()))?;
        Ok(Imported { files })
    }

    /// A short digest of every file's path, size and time.
    pub fn stamp(&self) -> String {
        let lines: Vec<String> = self.files.iter().map(|(p, s)| format!("{p} {s}")).collect();
        crate::digest::sha256_bytes(lines.join("\n").as_bytes())[..12].to_string()
    }

    /// What the running processes imported; `None` when not recorded.
    pub fn load(ws: &Workspace) -> Option<Imported> {
        serde_json::from_str(&fs::read_to_string(Self::path(ws)).ok()?).ok()
    }

    pub fn save(&self, ws: &Workspace) -> Result<()> {
        let text = serde_json::to_string(self)? + "\n";
        fsx::write_atomic(&Self::path(ws), text.as_bytes())
    }

    /// The files added, removed or changed from `self` to `now`.
    fn changed(&self, now: &Imported) -> Vec<String> {
        let mut out: Vec<String> = now
            .files
            .iter()
            .filter(|(path, stamp)| self.files.get(*path) != Some(stamp))
            .map(|(path, _)| path.clone())
            .collect();
        out.extend(
            self.files
                .keys()
                .filter(|path| !now.files.contains_key(*path))
                .cloned(),
        );
        out.sort();
        out
    }
}

/// Restart the kept cluster's workers and engines when the project's source
/// changed since they started, saying so on one line; what they import now
/// saved. Readiness is the caller's next step. `true` when it did.
pub fn refresh(cx: &Ctx, cluster: &dyn Cluster, state: &ClusterState) -> Result<bool> {
    let files = Imported::of(&state.project)?;
    let before = Imported::load(&cx.ws);
    if before.as_ref() == Some(&files) {
        return Ok(false);
    }
    // Without a record of what they imported, all of numba's cache goes.
    let changed = before.map(|before| before.changed(&files));
    let what = match &changed {
        Some(c) if c.len() == 1 => format!("{} changed", c[0]),
        Some(c) => format!("{} files changed", c.len()),
        None => "it changed".into(),
    };
    cx.ui.say(&format!(
        "the project's source changed since the workers and engines started ({what}): restarting the Dask workers (through their nannies) and the {} engines",
        state.size.engines
    ));
    let start = Instant::now();
    let limit = Duration::from_secs(cx.ws.config.timeouts.ready_s)
        .as_secs()
        .to_string();
    let mut args = vec!["restart", &limit];
    match &changed {
        Some(c) => {
            args.push("--changed");
            args.extend(c.iter().map(String::as_str));
        }
        None => args.push("--all"),
    }
    let out = cluster
        .probe(&args)
        .context("restarting the workers and stopping the engines")?;
    let done: Restarted = serde_json::from_str(out.trim())
        .with_context(|| format!("reading what the probe restarted: {out}"))?;
    cluster.start_engines()?;
    cx.ui.say(&format!(
        "restarting {} Dask workers and {} engines ({:.1} s so far); {} numba cache files of the edited modules and their importers removed",
        done.workers,
        done.engines_stopped,
        start.elapsed().as_secs_f64(),
        done.numba_cache_files_removed
    ));
    files.save(&cx.ws)?;
    Ok(true)
}
/// Wait until the project's source differs from `stamp` (polling twice a
/// second; Ctrl-C ends the wait), for `test --watch`; the new stamp.
pub fn wait_for_change(state: &ClusterState, stamp: &str) -> Result<String> {
    loop {
        crate::interrupt::check()?;
        let now = Imported::of(&state.project)?.stamp();
        if now != stamp {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_report_reads() {
        let r: Restarted = serde_json::from_str(
            r#"{"engines_stopped": 2, "numba_cache_files_removed": 3, "workers": 6}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Restarted {
                workers: 6,
                engines_stopped: 2,
                numba_cache_files_removed: 3
            }
        );
    }

    #[test]
    fn the_changed_files_are_the_added_removed_and_edited_ones() {
        let of = |pairs: &[(&str, &str)]| Imported {
            files: pairs
                .iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect(),
        };
        let before = of(&[("a.py", "1 1"), ("b.py", "2 2"), ("c.py", "3 3")]);
        let now = of(&[("a.py", "1 1"), ("b.py", "2 5"), ("d.py", "4 4")]);
        assert_eq!(before.changed(&now), ["b.py", "c.py", "d.py"]);
        assert!(now.changed(&now).is_empty());
    }
}
