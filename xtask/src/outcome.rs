//! How a run ended and what it kept, as plain data every layer may read
//! (summary.json, the report): the snapshots taken at deadlines, the
//! environment, and the verdict.
//!
//! The verdict says how a run ended in the words a developer acts on, and the exit code
//! that says it (docs/dist-tests.md, "Verdicts and exit codes"):
//!
//! | verdict        | exit code | when |
//! |----------------|-----------|------|
//! | passed         | 0         | pytest passed, nothing around it failed |
//! | failed         | pytest's (1-5) | pytest decided: a test failed, a usage error, no tests |
//! | timed out      | pytest's, or 124 | a test passed its deadline (pytest went on and decided), or the suite's deadline or a test that could not be stopped ended pytest (124) |
//! | infrastructure | 75        | the cluster failed under the tests: a service died or was killed for memory, a swarm node left, the cluster never got ready |
//! | error          | 1         | the run failed around the tests (a build, a bad selection) |
//! | interrupted    | 130       | a signal |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A test that could not be stopped, or the suite's deadline: pytest was
/// ended by the harness (timeout(1)'s code).
pub const TIMED_OUT: i32 = 124;
/// The environment broke (sysexits' EX_TEMPFAIL: worth running again).
pub const INFRASTRUCTURE: i32 = 75;
pub const INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunVerdict {
    #[serde(rename = "passed")]
    Passed,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "timed out")]
    TimedOut,
    #[serde(rename = "infrastructure")]
    Infrastructure,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "interrupted")]
    Interrupted,
}

impl RunVerdict {
    pub fn word(self) -> &'static str {
        match self {
            RunVerdict::Passed => "passed",
            RunVerdict::Failed => "failed",
            RunVerdict::TimedOut => "timed out",
            RunVerdict::Infrastructure => "infrastructure",
            RunVerdict::Error => "error",
            RunVerdict::Interrupted => "interrupted",
        }
    }
}

/// What the verdict is decided from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub interrupted: bool,
    /// pytest's exit code, when it ended on its own (or was ended by the
    /// harness with [`TIMED_OUT`]).
    pub pytest: Option<i32>,
    /// Whether everything around pytest went well.
    pub outcome_ok: bool,
    /// A service died, a node left, or the cluster never got ready.
    pub infrastructure: bool,
    /// The suite's deadline ended pytest.
    pub suite_timed_out: bool,
    /// A test passed its deadline.
    pub test_timed_out: bool,
}

/// The run's verdict and exit code; pytest's code is kept wherever pytest decided.
pub fn decide(f: Facts) -> (RunVerdict, i32) {
    if f.interrupted {
        return (RunVerdict::Interrupted, INTERRUPTED);
    }
    if f.infrastructure {
        return (RunVerdict::Infrastructure, INFRASTRUCTURE);
    }
    if f.suite_timed_out || f.pytest == Some(TIMED_OUT) {
        return (RunVerdict::TimedOut, TIMED_OUT);
    }
    match (f.outcome_ok, f.pytest) {
        (true, Some(0)) => (RunVerdict::Passed, 0),
        (_, Some(c)) if c != 0 && f.test_timed_out => (RunVerdict::TimedOut, c),
        (_, Some(c)) if c != 0 => (RunVerdict::Failed, c),
        _ => (RunVerdict::Error, 1),
    }
}

/// One snapshot, as `summary.json` lists it (paths relative to the run's
/// folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The test that passed its deadline; `null` for the suite's deadline.
    pub test: Option<String>,
    /// When it was taken (Unix seconds).
    pub at: f64,
    pub dir: String,
    /// One file per service: `timeouts/1-test_x/stacks/worker-1.txt`.
    pub stacks: Vec<String>,
    /// Dask's `dump_cluster_state`, in YAML.
    pub dask: Option<String>,
    /// The controller's engines and their queues, as JSON.
    pub engines: Option<String>,
    /// Whether the suite could go on on this cluster.
    pub usable: bool,
    /// Why not.
    #[serde(default)]
    pub why: Option<String>,
}

/// The distributions a LiberTEM developer asks about first, in this order.
pub const KEY_PACKAGES: &[&str] = &[
    "libertem",
    "dask",
    "distributed",
    "ipyparallel",
    "numba",
    "numpy",
    "pytest",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Every distribution in the image, `{name: version}`.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// The project under test: its commit and whether its tree had
    /// changes (`null` for a project that is no git checkout, the sdist).
    #[serde(default)]
    pub project_commit: Option<String>,
    #[serde(default)]
    pub project_dirty: Option<bool>,
    /// This harness's checkout.
    #[serde(default)]
    pub harness_commit: Option<String>,
    #[serde(default)]
    pub harness_dirty: Option<bool>,
    /// The engine's version (`20.10.24+dfsg1 (linux/amd64)`).
    #[serde(default)]
    pub engine: Option<String>,
}

impl Environment {
    /// The key distributions' versions, in [`KEY_PACKAGES`]' order.
    pub fn key_versions(&self) -> Vec<(&'static str, &str)> {
        KEY_PACKAGES
            .iter()
            .filter_map(|k| Some((*k, self.versions.get(*k)?.as_str())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pytest(code: i32) -> Facts {
        Facts {
            pytest: Some(code),
            outcome_ok: true,
            ..Facts::default()
        }
    }

    #[test]
    fn pytest_decides_when_nothing_around_it_failed() {
        assert_eq!(decide(pytest(0)), (RunVerdict::Passed, 0));
        assert_eq!(decide(pytest(1)), (RunVerdict::Failed, 1));
        assert_eq!(decide(pytest(4)), (RunVerdict::Failed, 4));
        assert_eq!(decide(pytest(5)), (RunVerdict::Failed, 5));
    }

    #[test]
    fn a_test_past_its_deadline_is_timed_out_with_pytests_code() {
        let f = Facts {
            test_timed_out: true,
            ..pytest(1)
        };
        assert_eq!(decide(f), (RunVerdict::TimedOut, 1));
        // pytest ended by the harness, or by the suite's deadline
        assert_eq!(decide(pytest(TIMED_OUT)), (RunVerdict::TimedOut, 124));
        let suite = Facts {
            suite_timed_out: true,
            pytest: None,
            outcome_ok: false,
            ..Facts::default()
        };
        assert_eq!(decide(suite), (RunVerdict::TimedOut, 124));
    }

    #[test]
    fn infrastructure_wins_over_what_pytest_said_and_a_signal_over_all() {
        let dead = Facts {
            infrastructure: true,
            ..pytest(1)
        };
        assert_eq!(decide(dead), (RunVerdict::Infrastructure, 75));
        let dead_but_passed = Facts {
            infrastructure: true,
            ..pytest(0)
        };
        assert_eq!(decide(dead_but_passed).1, 75);
        let interrupted = Facts {
            interrupted: true,
            ..dead
        };
        assert_eq!(decide(interrupted), (RunVerdict::Interrupted, 130));
    }

    #[test]
    fn a_failure_around_pytest_is_an_error() {
        let build = Facts::default();
        assert_eq!(decide(build), (RunVerdict::Error, 1));
        let after = Facts {
            outcome_ok: false,
            ..pytest(0)
        };
        assert_eq!(decide(after), (RunVerdict::Error, 1));
        let after_failed = Facts {
            outcome_ok: false,
            ..pytest(2)
        };
        assert_eq!(decide(after_failed), (RunVerdict::Failed, 2));
    }
}
