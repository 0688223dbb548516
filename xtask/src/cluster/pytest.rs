//! The tests container's pytest: its command line, and the timeline the
//! harness writes about its run (dist_test_ready.py).

use std::path::Path;

use crate::junit::{Failure as JunitFailure, JunitReport, Kind, SkipReason, Status, TestCase};

use serde::{Deserialize, Serialize};

/// What the harness writes about pytest's run, in the results folder.
pub const TIMELINE_FILE: &str = "pytest-timeline.json";

/// Where pytest's own cache (`--lf`, `--ff`, `--sw`) is in the tests
/// container: a folder of the checkout's for the project under test
/// ([`crate::workspace::Workspace::pytest_cache`]), never the project's
/// source, which is mounted read-only.
pub const PYTEST_CACHE: &str = "/pytest-cache";

/// Where the harness plugins are in a tests container (packaging/docker,
/// bound read-only), and where every Python process writes its stacks on
/// request (dist_test_stacks.py).
pub const HARNESS_DIR: &str = "/opt/dist-test-harness";
pub const STACKS_DIR: &str = "/tmp/dist-test-stacks";

/// What the harness plugins of a tests container that is started for its
/// pytest (the swarm's tests service, the attached backend's container)
/// read besides the limits: the scheduler, how many engines to wait for,
/// the plugins' path, the ready file and how long to wait for it, the
/// timeline; `results` the results folder as the container sees it.
pub fn harness_env(
    scheduler: &str,
    engines: u32,
    ready_s: u64,
    results: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DASK_SCHEDULER_ADDRESS", scheduler.to_string()),
        ("DIST_TEST_ENGINES", engines.to_string()),
        ("PYTHONPATH", HARNESS_DIR.to_string()),
        (
            "DIST_TEST_READY_FILE",
            format!("{results}/{}", super::spec::READY_FILE),
        ),
        ("DIST_TEST_READY_TIMEOUT_S", ready_s.to_string()),
        ("DIST_TEST_TIMELINE", format!("{results}/{TIMELINE_FILE}")),
    ]
}

/// The option that names the JUnit file; [`with_results`] adds it.
const JUNIT_FAMILY: &str = "junit_family=xunit1";

/// The tests container's command: LiberTEM's dist suite, `pytest tests/ -m
/// dist`, with the run's own options and the user's arguments after them.
/// When the user names test paths (`tests/io/datasets/test_raw.py`,
/// `tests/test_ipython.py::test_sum_on_dist`), those replace `tests/`, as
/// with pytest itself, so that pytest collects only them; `-m dist` stays.
pub fn pytest_command(pytest_args: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = ["pytest"].map(String::from).to_vec();
    if !names_test_paths(pytest_args) {
        cmd.push("tests/".into());
    }
    cmd.extend(
        [
            "-m",
            "dist",
            "-p",
            "dist_test_harness",
            "-p",
            "dist_test_ready",
            "-o",
            &format!("cache_dir={PYTEST_CACHE}"),
            // xunit1 gives every test case its file and line (annotations).
            "-o",
            JUNIT_FAMILY,
        ]
        .map(String::from),
    );
    cmd.extend(pytest_args.iter().cloned());
    cmd
}

/// `command` (from [`pytest_command`]) writing its JUnit file into
/// `results`, the results folder as the tests container sees it, before
/// the user's arguments.
pub fn with_results(command: &[String], results: &str) -> Vec<String> {
    let mut cmd = command.to_vec();
    let at = cmd
        .iter()
        .position(|a| a == JUNIT_FAMILY)
        .map_or(cmd.len(), |i| i + 1);
    cmd.insert(at, format!("--junitxml={results}/junit.xml"));
    cmd
}

/// [`pytest_command`] without arguments of the user's, naming `paths` (the
/// modules of a remembered selection, see selection.rs) instead of `tests/`.
pub fn pytest_command_naming(paths: &[String]) -> Vec<String> {
    let mut cmd = pytest_command(&[]);
    cmd.splice(1..2, paths.iter().cloned());
    cmd
}

/// What the harness records (Unix times): pytest's start, the end of its
/// collection, when it saw the cluster ready, its end; and the node ids it
/// selected.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Timeline {
    pub started: f64,
    pub collected: Option<f64>,
    pub ready: Option<f64>,
    pub finished: Option<f64>,
    #[serde(default)]
    pub items: Vec<String>,
    /// Each test as it ran, in order.
    #[serde(default)]
    pub tests: Vec<TestSpan>,
}

/// One test's run, as the harness saw it (Unix times).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestSpan {
    pub id: String,
    pub start: f64,
    /// Absent when pytest did not get to its end.
    #[serde(default)]
    pub end: Option<f64>,
    /// `passed`, `failed` (in the test), `error` (in its setup, or in its
    /// teardown after it passed), `skipped`; `running` when it never ended.
    #[serde(default)]
    pub outcome: String,
    /// The harness's verdict when it is not the outcome's: `timed out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// What each failing phase left (read from the harness's file; the
    /// summary carries it per test, not in its timeline).
    #[serde(default, skip_serializing)]
    pub failures: Vec<Failure>,
}

/// A failing phase of a test, as the harness recorded it: its full
/// traceback and what pytest captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// `setup`, `call` or `teardown`.
    pub when: String,
    pub longrepr: String,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub log: String,
}

impl Timeline {
    /// What pytest's JUnit XML would have said, from the timeline: for a
    /// pytest ended before it wrote one (a test that would not stop, the
    /// suite's deadline). A test still running then counts as failed.
    pub fn as_junit(&self) -> JunitReport {
        let mut report = JunitReport::default();
        let skips = self.tests.iter().filter(|t| t.outcome == "skipped").count() as u64;
        if skips > 0 {
            // The timeline keeps no reason.
            report.skip_reasons.push(SkipReason {
                reason: "(not recorded: pytest was ended before it reported)".into(),
                count: skips,
            });
        }
        for t in &self.tests {
            let status = match t.outcome.as_str() {
                "passed" => Status::Passed,
                "skipped" => Status::Skipped,
                "error" => Status::Error,
                _ => Status::Failed,
            };
            let file = t.id.split("::").next().map(str::to_string);
            report.tests.push(TestCase {
                id: t.id.clone(),
                file: file.clone(),
                line: None,
                secs: t
                    .end
                    .map_or(0.0, |end| ((end - t.start) * 1000.0).round() / 1000.0),
                status,
            });
            if matches!(status, Status::Failed | Status::Error) {
                let text = t
                    .failures
                    .last()
                    .map(|f| f.longrepr.clone())
                    .unwrap_or_default();
                let message = match (t.verdict.as_deref(), t.outcome.as_str()) {
                    (Some(v), _) => format!("{v} (pytest was ended before it reported)"),
                    (None, "running") => "pytest was ended while the test ran".to_string(),
                    _ => text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .to_string(),
                };
                let kind = if status == Status::Error {
                    Kind::Error
                } else {
                    Kind::Failure
                };
                report.failures.push(JunitFailure {
                    kind,
                    id: t.id.clone(),
                    file,
                    line: None,
                    message,
                    text,
                });
            }
        }
        report
    }

    /// The timeline in a results folder, if pytest got far enough to write one.
    pub fn read(results: &Path) -> Option<Timeline> {
        let text = std::fs::read_to_string(results.join(TIMELINE_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Where pytest's time went, given when the cluster was declared ready
    /// (Unix time) and how the tests were selected.
    pub fn times(&self, declared: Option<f64>, selection: String) -> Option<PytestTimes> {
        let collected = self.collected?;
        let ready = self.ready.unwrap_or(collected);
        let r2 = |s: f64| (s.max(0.0) * 100.0).round() / 100.0;
        Some(PytestTimes {
            collect_s: r2(collected - self.started),
            waited_s: r2(ready - collected),
            late_s: r2(declared.map_or(0.0, |d| collected - d)),
            after_ready_s: self.finished.map(|f| r2(f - ready)),
            selection,
        })
    }
}

/// Where the time of pytest's run went, for `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PytestTimes {
    /// pytest's start (the harness plugin's load, right after pytest's own
    /// import) to the end of its collection.
    pub collect_s: f64,
    /// The end of collection to the cluster being ready: the tests
    /// container idle, waiting for the cluster.
    pub waited_s: f64,
    /// The cluster being ready to the end of collection: the cluster idle,
    /// waiting for pytest.
    pub late_s: f64,
    /// From the first test on a ready cluster to pytest's end.
    pub after_ready_s: Option<f64>,
    /// `collected` (pytest collected `tests/`), or `named from run <id>`.
    pub selection: String,
}

impl PytestTimes {
    /// One line for the run's end.
    pub fn describe(&self) -> String {
        let after = self
            .after_ready_s
            .map_or("did not finish".into(), |s| format!("{s:.1} s"));
        let mut line = format!(
            "started and collected in {:.1} s ({}), waited {:.1} s for the cluster; \
             tests on the ready cluster {after}",
            self.collect_s, self.selection, self.waited_s
        );
        if self.late_s > 0.0 {
            line.push_str(&format!(
                " (the cluster waited {:.1} s for the collection)",
                self.late_s
            ));
        }
        line
    }
}

/// pytest's common options that take no value: a path after them is a
/// positional argument. After any other option it may be the option's value.
const FLAGS: &[&str] = &[
    "-x",
    "-v",
    "-vv",
    "-q",
    "-s",
    "-l",
    "-ra",
    "--exitfirst",
    "--verbose",
    "--quiet",
    "--lf",
    "--last-failed",
    "--ff",
    "--failed-first",
    "--nf",
    "--sw",
    "--pdb",
];

/// Whether an argument is a test path under `tests/` given to pytest as a
/// positional argument (not the value of an option such as `--deselect`).
fn names_test_paths(args: &[String]) -> bool {
    let mut previous: Option<&str> = None;
    for a in args {
        let after_option =
            previous.is_some_and(|p| p.starts_with('-') && !p.contains('=') && !FLAGS.contains(&p));
        if a.starts_with("tests/") && !after_option {
            return true;
        }
        previous = Some(a);
    }
    false
}

#[cfg(test)]
mod tests;
