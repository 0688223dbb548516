//! A kept cluster never runs old code. Its workers and engines import the
//! project once, when they start, and keep what they imported: after an
//! edit, a `test` would run the tests container on the new code and the
//! workers on the old, and say nothing. So `up` records the project's
//! source stamp (its `.py` files' paths, sizes and times) before the
//! services start, and `test` compares it with the source now: when they
//! differ, the processes that imported the project restart before the
//! tests, and only those. Dask's nannies restart their workers (new
//! processes, the nannies and their containers stay); the engines are shut
//! down, waited for until the controller has dropped them, and their
//! services started again, so that readiness counts only engines that
//! registered anew. numba's cache is emptied first (the project's
//! byte-code stays): numba checks a cached function against its own file
//! only, and a caller in an unedited module would come back compiled with
//! the old callee (a new `dist-test` gets a new cache volume instead, see
//! numba.rs). The scheduler and the controller run no project code and keep
//! running. The stamp is taken before the restart: an edit made
//! during it restarts them again on the next `test`, never too few times.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Cluster;
use crate::checkout::kept::ClusterState;
use crate::context::Ctx;
use crate::project::source_stamp;

/// What `probe.py restart` reports.
#[derive(Debug, Deserialize, PartialEq)]
struct Restarted {
    workers: usize,
    engines_stopped: usize,
}

/// Did the source change since the workers and engines of `state` started?
pub fn stale(state: &ClusterState, now: &str) -> bool {
    state.source.as_deref() != Some(now)
}

/// Restart the kept cluster's workers and engines when the project's source
/// changed since they started, saying so on one line; the new stamp saved
/// in the state. Readiness is the caller's next step. `true` when it did.
pub fn refresh(cx: &Ctx, cluster: &dyn Cluster, state: &mut ClusterState) -> Result<bool> {
    let now = source_stamp(&state.project)
        .with_context(|| format!("reading the source of {}", state.project.display()))?;
    if !stale(state, &now) {
        return Ok(false);
    }
    let size = state.size;
    cx.ui.say(&format!(
        "the project's source changed since the workers and engines started: restarting {} Dask worker processes (their nannies) and {} engines",
        size.workers * 2,
        size.engines
    ));
    let start = Instant::now();
    let limit = Duration::from_secs(cx.ws.config.timeouts.ready_s);
    let out = cluster
        .probe(&["restart", &limit.as_secs().to_string()])
        .context("restarting the workers and stopping the engines")?;
    let done: Restarted = serde_json::from_str(out.trim())
        .with_context(|| format!("reading what the probe restarted: {out}"))?;
    cluster.start_engines()?;
    cx.ui.say(&format!(
        "restarted {} Dask workers and stopped {} engines in {:.1} s; the engines start again",
        done.workers,
        done.engines_stopped,
        start.elapsed().as_secs_f64()
    ));
    state.source = Some(now);
    state.save(&cx.ws)?;
    Ok(true)
}

/// Wait until the project's source differs from `stamp` (polling twice a
/// second; Ctrl-C ends the wait), for `test --watch`; the new stamp.
pub fn wait_for_change(state: &ClusterState, stamp: &str) -> Result<String> {
    loop {
        crate::interrupt::check()?;
        let now = source_stamp(&state.project)?;
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
        let r: Restarted = serde_json::from_str(r#"{"engines_stopped": 2, "workers": 4}"#).unwrap();
        assert_eq!(
            r,
            Restarted {
                workers: 4,
                engines_stopped: 2
            }
        );
    }
}
