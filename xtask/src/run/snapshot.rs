//! Where every process of a cluster was, kept with the run before anything
//! is torn down: when a test passes its deadline (the harness plugin asks,
//! with a request file in the results folder) and when the suite passes
//! its own. Each snapshot is a folder under the run's `timeouts/`: the
//! Python stacks of every thread of every process of every service (the
//! tests container's pytest included), Dask's cluster dump and the
//! ipyparallel controller's view, all taken at once by `snapshot.py` in
//! the containers, each bounded. Then it says whether the cluster can go
//! on: every service running, every worker and engine registered.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::outcome::Snapshot;

use crate::cluster::spec::SCHEDULER;
use crate::cluster::Cluster;
use crate::exec;

/// The image's helper (packaging/docker/snapshot.py).
const SNAPSHOT_PY: &str = "/opt/dist-test/snapshot.py";
/// How long a process has to give its stacks.
const STACKS_S: &str = "5";
/// How long the Dask dump and the controller's view may take in the
/// container; the whole snapshot is stopped at [`LIMIT`].
const DUMP_S: &str = "20";
pub const LIMIT: Duration = Duration::from_secs(60);

/// Take a snapshot of `cluster` into `run_dir/rel`.
pub fn take(cluster: &dyn Cluster, run_dir: &Path, rel: &str, test: Option<String>) -> Snapshot {
    let at = crate::clock::unix_now();
    let dir = run_dir.join(rel);
    let stacks_dir = dir.join("stacks");
    if let Err(e) = fs::create_dir_all(&stacks_dir) {
        eprintln!(
            "warning: no snapshot: creating {}: {e}",
            stacks_dir.display()
        );
    }
    let mut services = cluster.definition().size.services();
    services.push("tests".into());
    let mut commands: Vec<(std::process::Command, PathBuf)> = Vec::new();
    let mut stacks = Vec::new();
    for s in &services {
        let file = format!("stacks/{s}.txt");
        let path = dir.join(&file);
        match cluster.exec_in(s, &["python3", SNAPSHOT_PY, "stacks", STACKS_S]) {
            Some(c) => {
                commands.push((c, path));
                stacks.push(format!("{rel}/{file}"));
            }
            None => {
                let _ = fs::write(
                    &path,
                    format!("(no running container of {s} on this engine)\n"),
                );
            }
        }
    }
    let kept = |name: &str, args: &[&str], commands: &mut Vec<_>| {
        let mut command = vec!["python3", SNAPSHOT_PY];
        command.extend(args);
        let c = cluster.exec_in(SCHEDULER, &command)?;
        commands.push((c, dir.join(name)));
        Some(format!("{rel}/{name}"))
    };
    let address = format!("tcp://{SCHEDULER}:8786");
    let dask = kept(
        "dask-cluster-state.yaml",
        &["dask", &address, DUMP_S],
        &mut commands,
    );
    let engines = kept("ipyparallel.json", &["engines", DUMP_S], &mut commands);
    if let Err(e) = exec::run_all_to_files(commands, LIMIT) {
        eprintln!("warning: the snapshot is incomplete: {e:#}");
    }
    let why = cluster.unusable();
    Snapshot {
        test,
        at,
        dir: rel.to_string(),
        stacks,
        dask,
        engines,
        usable: why.is_none(),
        why,
    }
}

/// The harness's request files in `dir` (`<pid>-<n>.json`) that have no
/// answer (`<pid>-<n>.done`) yet, in order: (their name's stem, the test
/// named in it).
pub fn requests(dir: &Path) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Request {
        test: String,
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32), String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?;
            let (pid, n) = stem.split_once('-')?;
            let order = (pid.parse().ok()?, n.parse().ok()?);
            if dir.join(format!("{stem}.done")).exists() {
                return None;
            }
            let text = fs::read_to_string(e.path()).ok()?;
            let r: Request = serde_json::from_str(&text).ok()?;
            Some((order, stem.to_string(), r.test))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, stem, test)| (stem, test))
        .collect()
}

/// The answer the harness waits for: whether the suite may go on.
pub fn answer(dir: &Path, stem: &str, snapshot: &Snapshot) {
    let body = serde_json::json!({ "usable": snapshot.usable, "why": snapshot.why });
    let tmp = dir.join(format!("{stem}.done.tmp"));
    let done = dir.join(format!("{stem}.done"));
    let written = fs::write(&tmp, body.to_string()).and_then(|()| fs::rename(&tmp, &done));
    if let Err(e) = written {
        eprintln!("warning: answering the harness in {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_those_without_an_answer_oldest_first() {
        let dir = crate::fsx::scratch("requests");
        fs::write(dir.join("7-2.json"), r#"{"test": "t::b", "at": 1.0}"#).unwrap();
        fs::write(dir.join("7-1.json"), r#"{"test": "t::a", "at": 1.0}"#).unwrap();
        fs::write(dir.join("7-3.json.tmp"), "{").unwrap();
        fs::write(dir.join("7-10.json"), "not json yet").unwrap();
        fs::write(dir.join("8-1.json"), r#"{"test": "t::c", "at": 1.0}"#).unwrap();
        let pair = |stem: &str, test: &str| (stem.to_string(), test.to_string());
        assert_eq!(
            requests(&dir),
            vec![
                pair("7-1", "t::a"),
                pair("7-2", "t::b"),
                pair("8-1", "t::c")
            ]
        );
        let s = Snapshot {
            test: Some("t::a".into()),
            at: 0.0,
            dir: "timeouts/1".into(),
            stacks: vec![],
            dask: None,
            engines: None,
            usable: false,
            why: Some("worker-1 died".into()),
        };
        answer(&dir, "7-1", &s);
        assert_eq!(
            requests(&dir),
            vec![pair("7-2", "t::b"), pair("8-1", "t::c")]
        );
        let said: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("7-1.done")).unwrap()).unwrap();
        assert_eq!(said["usable"], false);
        assert_eq!(said["why"], "worker-1 died");
        fs::remove_dir_all(&dir).unwrap();
    }
}
