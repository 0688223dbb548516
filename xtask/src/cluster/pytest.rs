//! The tests container's pytest: its command line, and the timeline the
//! harness writes about its run (dist_test_ready.py).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the harness writes about pytest's run, in the results folder.
pub const TIMELINE_FILE: &str = "pytest-timeline.json";

/// Where pytest's own cache (`--lf`, `--ff`, `--sw`) is in the tests
/// container: a folder of the checkout's for the project under test
/// ([`crate::workspace::Workspace::pytest_cache`]), never the project's
/// source, which is mounted read-only.
pub const PYTEST_CACHE: &str = "/pytest-cache";

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
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn named_test_paths_replace_the_suite() {
        let whole = pytest_command(&strings(&["-k", "raw", "-x"]));
        assert_eq!(whole[..4], strings(&["pytest", "tests/", "-m", "dist"])[..]);
        assert_eq!(whole[whole.len() - 3..], strings(&["-k", "raw", "-x"])[..]);
        let one = pytest_command(&strings(&["tests/test_ipython.py::test_sum_on_dist"]));
        assert_eq!(one[..3], strings(&["pytest", "-m", "dist"])[..]);
        assert_eq!(
            one.last().unwrap(),
            "tests/test_ipython.py::test_sum_on_dist"
        );
        // A path that is an option's value is not a test path.
        for args in [
            ["--deselect", "tests/test_ipython.py::test_sum_on_dist"],
            ["--ignore", "tests/io"],
        ] {
            let c = pytest_command(&strings(&args));
            assert_eq!(c[1], "tests/", "{args:?}");
        }
        let c = pytest_command(&strings(&["--ignore=tests/io", "-x", "tests/test_raw.py"]));
        assert!(!c.contains(&"tests/".to_string()), "{c:?}");
    }

    #[test]
    fn the_junit_file_goes_to_the_results_before_the_users_arguments() {
        let c = with_results(&pytest_command(&strings(&["-x"])), "/runs/1/pytest");
        let junit = c
            .iter()
            .position(|a| a == "--junitxml=/runs/1/pytest/junit.xml");
        assert_eq!(junit, Some(c.len() - 2), "{c:?}");
        assert!(c.contains(&"cache_dir=/pytest-cache".to_string()), "{c:?}");
        assert!(!c.iter().any(|a| a.contains("no:cacheprovider")), "{c:?}");
    }

    #[test]
    fn a_selection_replaces_the_suite() {
        let modules = strings(&["tests/io/test_a.py", "tests/test_b.py"]);
        let c = pytest_command_naming(&modules);
        assert_eq!(
            c[..4],
            strings(&["pytest", &modules[0], &modules[1], "-m"])[..]
        );
        assert_eq!(c.len(), pytest_command(&[]).len() + 1);
    }

    #[test]
    fn the_harness_timeline_reads_with_each_tests_span() {
        let json = r#"{"started": 1.0, "collected": 2.0, "items": ["t::a"],
            "tests": [{"id": "t::a", "start": 3.0, "outcome": "passed", "end": 4.5},
                      {"id": "t::b", "start": 4.6, "outcome": "failed"}]}"#;
        let t: Timeline = serde_json::from_str(json).unwrap();
        assert_eq!(t.tests.len(), 2);
        assert_eq!(t.tests[0].end, Some(4.5));
        assert_eq!(
            (t.tests[1].end, t.tests[1].outcome.as_str()),
            (None, "failed")
        );
    }

    #[test]
    fn where_pytest_time_went() {
        let t = Timeline {
            started: 100.0,
            collected: Some(106.5),
            ready: Some(106.5),
            finished: Some(126.5),
            items: vec![],
            tests: vec![],
        };
        // The cluster was ready at 104: it waited 2.5 s for the collection.
        let p = t.times(Some(104.0), "collected".into()).unwrap();
        assert_eq!((p.collect_s, p.waited_s, p.late_s), (6.5, 0.0, 2.5));
        assert_eq!(p.after_ready_s, Some(20.0));
        // Ready at 110: pytest waited 3.5 s.
        let t = Timeline {
            ready: Some(110.0),
            ..t
        };
        let p = t.times(Some(110.0), "collected".into()).unwrap();
        assert_eq!(
            (p.waited_s, p.late_s, p.after_ready_s),
            (3.5, 0.0, Some(16.5))
        );
        // No collection, no times.
        let t = Timeline {
            collected: None,
            ..t
        };
        assert_eq!(t.times(None, "collected".into()), None);
    }
}
