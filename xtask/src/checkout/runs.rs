//! The run index: every run's folder under `target/dist-test/runs/`, the
//! `last` link to the newest, and the runs in progress. A run in progress
//! registers itself in `target/dist-test/live/`: `<id>.lock`, locked by its
//! process for as long as it lives, and `<id>.json`, what it uses (its
//! cluster, its image, its volumes). Whoever removes shared things (an
//! image a rebuild replaced, an old volume, a cluster left behind by
//! `down --all`) first asks [`in_progress`], and leaves those alone. A run
//! that was killed leaves its files behind unlocked: they are cleared the
//! next time anyone asks.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::lock::{now_secs, Holder};
use crate::fsx;
use crate::workspace::Workspace;

/// What a run in progress uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveRun {
    pub run_id: String,
    pub command: String,
    pub pid: u32,
    pub started: u64,
    /// Its compose project or stack, once it has one.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The images (ids) and volumes it runs, once built.
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// This process's registration as a run in progress; removed when dropped.
#[derive(Debug)]
pub struct Registration {
    lock: Option<File>,
    dir: PathBuf,
    pub entry: LiveRun,
}

fn live_dir(ws: &Workspace) -> PathBuf {
    ws.target.join("live")
}

impl Registration {
    /// Register run `run_id` of this process.
    pub fn new(ws: &Workspace, run_id: &str) -> Result<Registration> {
        let dir = live_dir(ws);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{run_id}.lock"));
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        lock.try_lock()
            .with_context(|| format!("locking {}", path.display()))?;
        let me = Holder::me("running");
        let reg = Registration {
            lock: Some(lock),
            dir,
            entry: LiveRun {
                run_id: run_id.to_string(),
                command: me.command,
                pid: me.pid,
                started: now_secs(),
                ..LiveRun::default()
            },
        };
        reg.save()?;
        Ok(reg)
    }

    /// Record what the run now uses.
    pub fn uses(&mut self, cluster: &str, images: &[String], volumes: &[String]) -> Result<()> {
        self.entry.cluster = Some(cluster.to_string());
        self.entry.images = images.to_vec();
        self.entry.volumes = volumes.to_vec();
        self.save()
    }

    fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.entry).context("describing the run")? + "\n";
        fsx::write_atomic(
            &self.dir.join(format!("{}.json", self.entry.run_id)),
            text.as_bytes(),
        )
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let id = &self.entry.run_id;
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
        let _ = fs::remove_file(self.dir.join(format!("{id}.lock")));
        drop(self.lock.take());
    }
}

/// The runs in progress, this process's own included; what killed runs
/// left is removed on the way.
pub fn in_progress(ws: &Workspace) -> Vec<LiveRun> {
    in_progress_in(&ws.target, true)
}

/// The runs in progress registered under `target` (a checkout's
/// `target/dist-test`); with `tidy`, what killed runs left is removed.
pub fn in_progress_in(target: &Path, tidy: bool) -> Vec<LiveRun> {
    let dir = target.join("live");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let json = path.with_extension("json");
        if alive(&path) {
            if let Some(run) = fs::read_to_string(&json)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                live.push(run);
            }
        } else if tidy {
            let _ = fs::remove_file(&json);
            let _ = fs::remove_file(&path);
        }
    }
    live.sort_by(|a: &LiveRun, b| a.run_id.cmp(&b.run_id));
    live
}

/// The images and volumes runs in progress use: not to be removed.
pub fn in_use(ws: &Workspace) -> (Vec<String>, Vec<String>) {
    let mut images = Vec::new();
    let mut volumes = Vec::new();
    for run in in_progress(ws) {
        images.extend(run.images);
        volumes.extend(run.volumes);
    }
    (images, volumes)
}

/// Whether a live run's lock file is held by a process.
fn alive(lock: &Path) -> bool {
    let Ok(file) = OpenOptions::new().write(true).open(lock) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Create `runs/<id>/` (with `logs/`) and point `last` at it in one step.
pub fn new_run_dir(target: &Path, run_id: &str) -> Result<PathBuf> {
    let dir = target.join("runs").join(run_id);
    fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    fsx::replace_symlink(&Path::new("runs").join(run_id), &target.join("last"))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_in_progress_while_registered_and_a_dead_one_is_cleared() {
        let mut ws = crate::workspace::for_tests();
        ws.target = crate::fsx::scratch("live-runs");
        let mut reg = Registration::new(&ws, "r1").unwrap();
        reg.uses("proj-r1", &["sha256:a".into()], &["v1".into()])
            .unwrap();
        let live = in_progress(&ws);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].cluster.as_deref(), Some("proj-r1"));
        assert_eq!(live[0].images, ["sha256:a"]);
        // What a killed run leaves: its files, unlocked.
        fs::write(live_dir(&ws).join("r0.lock"), "").unwrap();
        fs::write(live_dir(&ws).join("r0.json"), "{}").unwrap();
        assert_eq!(in_progress(&ws).len(), 1);
        assert!(!live_dir(&ws).join("r0.json").exists(), "cleared");
        drop(reg);
        assert!(in_progress(&ws).is_empty());
        assert_eq!(fs::read_dir(live_dir(&ws)).unwrap().count(), 0);
    }

    #[test]
    fn the_last_link_follows_the_newest_run() {
        let target = crate::fsx::scratch("runs");
        new_run_dir(&target, "a").unwrap();
        let b = new_run_dir(&target, "b").unwrap();
        assert!(b.join("logs").is_dir());
        assert_eq!(
            fs::read_link(target.join("last")).unwrap(),
            Path::new("runs/b")
        );
    }
}
