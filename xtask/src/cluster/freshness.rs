//! A kept cluster never runs old code. Its workers and engines import the
//! project when they need it and keep what they imported: after an edit, a
//! `test` would run the tests container on the new code and the workers on
//! the old, and say nothing. So `up` records the project's `.py` files
//! (their paths, sizes and times, `cluster/source.json`) before the
//! services start, and `test` compares it with the source now. When files
//! changed, `probe.py restart` asks every process that runs the project's
//! code for the tests (each Dask worker process, each ipyparallel engine)
//! which of the project's files it has loaded, and replaces those that
//! loaded a changed one: they exit at once (nothing of theirs is worth a
//! graceful close between two runs), their nanny or their warm parent
//! (warm_start.py) starts new ones forked from a process that has imported
//! everything but the project, and the new ones import the project's
//! modules the old ones had, while pytest starts and collects. A file no
//! such process has loaded (a test module, say) restarts nothing: whoever
//! imports it next reads it as it is. The nanny processes, the scheduler and
//! the controller keep running: they load some of the project while they
//! start or unpickle a task, but run none of it for the tests (an object
//! passes through them by reference, and the workers import its class).
//! Whatever restarts, numba's cache of the changed modules and of every
//! module that imports one of them (directly or not) goes first: numba
//! checks a cached function against its own file only, and a caller in an
//! unedited module would come back compiled with the old callee (a new
//! `dist-test` gets a new cache volume instead, see numba.rs). Which files
//! changed comes from the listing `up` (and each `test`) saved beside the
//! state. The listing is taken before the restart: an edit made during it
//! restarts them again on the next `test`, never too few times.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::cluster::spec::Observation;
use crate::cluster::state::ClusterState;
use crate::fsx;
use crate::project::source_listing;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// What `probe.py restart` reports.
#[derive(Debug, Deserialize, PartialEq)]
struct Restarted {
    /// Dask worker processes and engines replaced.
    workers: usize,
    engines: usize,
    /// The project's modules the replaced ones had loaded, imported again.
    modules: usize,
    numba_cache_files_removed: usize,
    /// Seconds from the probe's start until the old processes were gone,
    /// the new ones registered, and the new ones had imported the modules.
    #[serde(default)]
    replaced_s: f64,
    #[serde(default)]
    warmed_s: f64,
    /// `module: error` for what the new processes failed to import.
    #[serde(default)]
    warm_errors: Vec<String>,
    /// What had registered when it was done (`probe.py observe`'s line).
    #[serde(default)]
    seen: Option<Observation>,
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

/// Replace the kept cluster's workers and engines that loaded a file
/// changed since the last run (see the module docs), saying what it did on
/// one line; what they import now saved. Readiness is the caller's next
/// step: `None` when the source did not change, else what had registered
/// when the probe was done.
pub fn refresh(
    ws: &Workspace,
    ui: Ui,
    cluster: &dyn Cluster,
    state: &ClusterState,
) -> Result<Option<Observation>> {
    let files = Imported::of(&state.project)?;
    let before = Imported::load(ws);
    if before.as_ref() == Some(&files) {
        return Ok(None);
    }
    // Without a record of what they imported, every one of them restarts.
    let changed = before.map(|before| before.changed(&files));
    let what = match &changed {
        Some(c) if c.len() == 1 => format!("{} changed", c[0]),
        Some(c) => format!("{} files changed", c.len()),
        None => "the source changed".into(),
    };
    crate::live::status(format!("{what}: replacing what loaded it"), None);
    let start = Instant::now();
    let limit = ws.config.timeouts.ready_s.to_string();
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
        .context("replacing the workers and engines that run edited code")?;
    let done: Restarted = serde_json::from_str(out.trim())
        .with_context(|| format!("reading what the probe restarted: {out}"))?;
    ui.say(&done.describe(&what, start.elapsed().as_secs_f64()));
    if let Some(first) = done.warm_errors.first() {
        ui.say(&format!(
            "warning: the new workers and engines could not import {} of the project's modules, first {first}",
            done.warm_errors.len()
        ));
    }
    files.save(ws)?;
    Ok(Some(done.seen.unwrap_or_default()))
}

impl Restarted {
    /// The one line `test` prints about it.
    fn describe(&self, what: &str, secs: f64) -> String {
        let cache = match self.numba_cache_files_removed {
            0 => String::new(),
            n => format!("; {n} numba cache files of it and its importers removed"),
        };
        if self.workers + self.engines == 0 {
            return format!("{what}; no worker or engine has loaded it: nothing restarted{cache}");
        }
        format!(
            "{what}: replaced {} Dask worker processes and {} engines that had loaded it in {secs:.1} s \
             (registered after {:.1} s, then {} of the project's modules imported in {:.1} s){cache}",
            self.workers,
            self.engines,
            self.replaced_s,
            self.modules,
            self.warmed_s - self.replaced_s
        )
    }
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
    fn the_probe_report_reads_and_says_what_restarted() {
        let r: Restarted = serde_json::from_str(
            r#"{"engines": 2, "modules": 55, "numba_cache_files_removed": 3, "workers": 6,
                "stopped_s": 0.3, "replaced_s": 1.5, "warmed_s": 2.0, "warm_errors": []}"#,
        )
        .unwrap();
        assert_eq!((r.workers, r.engines, r.modules), (6, 2, 55));
        let line = r.describe("src/a.py changed", 2.2);
        assert!(
            line.starts_with("src/a.py changed: replaced 6 Dask worker processes and 2 engines")
                && line.contains("55 of the project's modules imported in 0.5 s")
                && line.ends_with("3 numba cache files of it and its importers removed"),
            "{line}"
        );
        let none: Restarted = serde_json::from_str(
            r#"{"engines": 0, "modules": 0, "numba_cache_files_removed": 0, "workers": 0}"#,
        )
        .unwrap();
        assert_eq!(
            none.describe("tests/test_a.py changed", 1.0),
            "tests/test_a.py changed; no worker or engine has loaded it: nothing restarted"
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
