//! What a run ran on, kept once per run for its failure bundle and report:
//! the distributions installed in the image (from the running tests
//! container), the commit of the project under test and of this harness
//! with whether their trees had changes, the Python, the Docker engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::exec;
use crate::ui::Ui;

const LIMIT: Duration = Duration::from_secs(30);

/// The distributions installed, read in the scheduler's container (the
/// image every service runs; on a swarm the tests' container is gone by
/// then) (`crate::outcome::Environment::versions`).
pub fn versions_of(cluster: &dyn Cluster, ui: Ui) -> BTreeMap<String, String> {
    let command = ["python3", "/opt/dist-test/snapshot.py", "versions"];
    let Some(c) = cluster.exec_in(crate::cluster::spec::SCHEDULER, &command) else {
        return BTreeMap::new();
    };
    exec::read(c, LIMIT, ui)
        .ok()
        .and_then(|out| serde_json::from_str(&out).ok())
        .unwrap_or_default()
}

/// The commit checked out in `dir` and whether its tree has changes; both
/// `None` when it is no git checkout (or git is missing).
pub fn commit_of(dir: &Path, ui: Ui) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("-C").arg(dir).args(args);
        exec::read(c, LIMIT, ui).ok()
    };
    // A folder inside another checkout (the sdist under target/) is none.
    let top = git(&["rev-parse", "--show-toplevel"]).map(|t| std::path::PathBuf::from(t.trim()));
    let same = top.is_some_and(|t| t.canonicalize().ok() == dir.canonicalize().ok());
    let Some(head) = git(&["rev-parse", "--verify", "HEAD"]).filter(|_| same) else {
        return (None, None);
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.trim().is_empty());
    (Some(head.trim().to_string()), dirty)
}
