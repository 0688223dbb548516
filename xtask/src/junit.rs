//! pytest's JUnit XML, read with roxmltree: every test case with its id,
//! file, line, duration and outcome; every failure and error with its text;
//! the counts and skip reasons of `summary.json`, and pytest's own duration.
//!
//! With `-o junit_family=xunit1` (which the xtask passes) every
//! `<testcase>` carries `file` (relative to pytest's rootdir, /src in the
//! tests container, the project's root) and `line` (pytest's 0-based line
//! of the test's `def`). The default family, xunit2, has neither; then the
//! file and line come from the failure text alone.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod location;

use location::{failure_location, node_id, repo_path};

/// The counts of `summary.json`, as pytest counts them: `failed` and
/// `errors` count `<failure>` and `<error>` elements (a test that fails and
/// then errors in teardown counts in both); `passed` are test cases with
/// neither, nor a skip.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errors: u64,
    /// Skip reasons with how often each occurred, in the order first seen.
    pub skip_reasons: Vec<SkipReason>,
    /// Modules pytest skipped while collecting them (LiberTEM's Windows-only
    /// `tests/test_win_tweaks.py`, say): no dist test, so not in `skipped`.
    #[serde(default)]
    pub skipped_at_collection: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipReason {
    pub reason: String,
    pub count: u64,
}

/// What became of one test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// pytest's node id when the file is known (`tests/test_x.py::TestA::test_b[1]`),
    /// else `classname::name`.
    pub id: String,
    /// Relative to the project's root.
    pub file: Option<String>,
    /// 1-based line of the test's `def`.
    pub line: Option<u32>,
    pub secs: f64,
    pub status: Status,
}

/// `<failure>`: the test failed. `<error>`: its setup or teardown failed, or
/// collection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Error,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Failure => "failed",
            Kind::Error => "error",
        }
    }
}

/// One `<failure>` or `<error>` of a test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: Kind,
    /// The test case's id (see [`TestCase::id`]).
    pub id: String,
    /// Where it belongs, relative to the project's root: the last line of
    /// the traceback in the test's own file, else the test's `def`.
    pub file: Option<String>,
    /// 1-based.
    pub line: Option<u32>,
    /// pytest's one-line reason (the `message` attribute), e.g.
    /// `AssertionError: ...` or `failed on setup with "..."`.
    pub message: String,
    /// The whole failure text (traceback, captured assertion details).
    pub text: String,
}

/// One of the slowest tests, in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTest {
    pub id: String,
    pub secs: f64,
}

/// Everything the JUnit XML says, in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitReport {
    pub tests: Vec<TestCase>,
    pub failures: Vec<Failure>,
    pub skip_reasons: Vec<SkipReason>,
    /// Modules skipped while collecting (see [`Counts::skipped_at_collection`]).
    pub skipped_at_collection: Vec<String>,
    /// pytest's own duration: the `time` of its `<testsuite>`s.
    pub secs: Option<f64>,
}

impl JunitReport {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for f in &self.failures {
            match f.kind {
                Kind::Failure => c.failed += 1,
                Kind::Error => c.errors += 1,
            }
        }
        c.skipped = self.skip_reasons.iter().map(|r| r.count).sum();
        c.passed = self
            .tests
            .iter()
            .filter(|t| t.status == Status::Passed)
            .count() as u64;
        c.skip_reasons = self.skip_reasons.clone();
        c.skipped_at_collection = self.skipped_at_collection.clone();
        c
    }

    /// The `n` slowest tests that ran, for `summary.json`.
    pub fn slow_tests(&self, n: usize) -> Vec<SlowTest> {
        slowest(&self.tests, n)
            .into_iter()
            .map(|t| SlowTest {
                id: t.id.clone(),
                secs: t.secs,
            })
            .collect()
    }
}

/// The `n` slowest tests that ran (skipped ones did not), slowest first.
pub fn slowest(tests: &[TestCase], n: usize) -> Vec<&TestCase> {
    let mut ran: Vec<&TestCase> = tests
        .iter()
        .filter(|t| t.status != Status::Skipped)
        .collect();
    ran.sort_by(|a, b| b.secs.total_cmp(&a.secs));
    ran.truncate(n);
    ran
}

/// The JUnit XML pytest left at `path`; an empty report when there is none
/// (pytest did not run).
pub fn read_junit(path: &Path) -> Result<JunitReport> {
    match fs::read_to_string(path) {
        Ok(xml) => parse_junit(&xml).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JunitReport::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Parse pytest's JUnit XML (`<testsuites>` or a single `<testsuite>`).
pub fn parse_junit(xml: &str) -> Result<JunitReport> {
    let doc = roxmltree::Document::parse(xml).context("parsing pytest's JUnit XML")?;
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    if suites.is_empty() {
        bail!("not pytest's JUnit XML: there is no <testsuite> element");
    }
    let mut report = JunitReport::default();
    let times: Vec<f64> = suites
        .iter()
        .filter_map(|s| seconds(s.attribute("time")))
        .collect();
    if !times.is_empty() {
        report.secs = Some(times.iter().sum());
    }
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let case = test_case(case, &mut report);
        report.tests.push(case);
    }
    Ok(report)
}

/// One `<testcase>`; its failures, errors and skip reason go into `report`.
fn test_case(case: roxmltree::Node, report: &mut JunitReport) -> TestCase {
    let classname = case.attribute("classname").unwrap_or("");
    let name = case.attribute("name").unwrap_or("");
    let file = case.attribute("file").and_then(repo_path);
    let def_line = case
        .attribute("line")
        .and_then(|l| l.parse::<u32>().ok())
        .map(|l| l + 1);
    let id = node_id(classname, name, file.as_deref());
    let (mut failed, mut errored, mut skipped) = (false, false, false);
    for child in case.children().filter(|n| n.is_element()) {
        let kind = match child.tag_name().name() {
            "failure" => Kind::Failure,
            "error" => Kind::Error,
            // A module skipped while collecting: no class, the module as name.
            "skipped" if classname.is_empty() => {
                skipped = true;
                report.skipped_at_collection.push(name.to_string());
                continue;
            }
            "skipped" => {
                skipped = true;
                let reason = child.attribute("message").unwrap_or("");
                match report.skip_reasons.iter_mut().find(|r| r.reason == reason) {
                    Some(r) => r.count += 1,
                    None => report.skip_reasons.push(SkipReason {
                        reason: reason.to_string(),
                        count: 1,
                    }),
                }
                continue;
            }
            _ => continue,
        };
        match kind {
            Kind::Failure => failed = true,
            Kind::Error => errored = true,
        }
        let text: String = child
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        let message = match child.attribute("message") {
            Some(m) if !m.trim().is_empty() => m.to_string(),
            _ => text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string(),
        };
        let (file, line) = failure_location(&text, file.as_deref(), def_line);
        report.failures.push(Failure {
            kind,
            id: id.clone(),
            file,
            line,
            message,
            text,
        });
    }
    let status = match (failed, errored, skipped) {
        (true, _, _) => Status::Failed,
        (_, true, _) => Status::Error,
        (_, _, true) => Status::Skipped,
        _ => Status::Passed,
    };
    TestCase {
        id,
        file,
        line: def_line,
        secs: seconds(case.attribute("time")).unwrap_or(0.0),
        status,
    }
}

/// A `time` attribute: seconds, finite and not negative.
fn seconds(attr: Option<&str>) -> Option<f64> {
    attr.and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
}

#[cfg(test)]
pub(crate) mod tests;
