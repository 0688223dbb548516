//! A run's repeats (`--repeat N`): every execution of every test, read from
//! each repeat's JUnit file, and per test how often it ran, passed and
//! failed, its pass rate, its durations and a verdict, `flaky` for a test
//! that both passed and failed. Failures grouped by cause are in [`causes`].

pub mod causes;

use serde::{Deserialize, Serialize};

use crate::junit::{JunitReport, Status};

/// One execution of one test: which repeat (1-based), how it ended, how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: String,
    pub repeat: u32,
    pub status: Status,
    pub secs: f64,
}

/// Every test case of a repeat's JUnit report, as executions of `repeat`.
pub fn executions(report: &JunitReport, repeat: u32) -> Vec<Execution> {
    report
        .tests
        .iter()
        // A module skipped while collecting (no `::` in its id) is no test.
        .filter(|t| t.status != Status::Skipped || t.id.contains("::"))
        .map(|t| Execution {
            id: t.id.clone(),
            repeat,
            status: t.status,
            secs: t.secs,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Passed every time it ran.
    Passed,
    /// Failed (or errored) every time it ran.
    Failed,
    /// Passed in some repeats and failed in others.
    Flaky,
    /// Skipped every time.
    Skipped,
    /// Never passed, and passed its deadline (see run/bundle.rs).
    #[serde(rename = "timed out")]
    TimedOut,
    /// Never passed, and failed while or after a service of the cluster died.
    Infrastructure,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Flaky => "flaky",
            Verdict::Skipped => "skipped",
            Verdict::TimedOut => "timed out",
            Verdict::Infrastructure => "infrastructure",
        }
    }
}

/// One test over all repeats, as `summary.json` (schema 2) lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub id: String,
    pub runs: u32,
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    /// Passes over the runs that were not skipped (0 to 1); `null` when
    /// it never ran.
    pub pass_rate: Option<f64>,
    pub min_s: f64,
    pub median_s: f64,
    pub max_s: f64,
    pub verdict: Verdict,
    /// Of its failures, how many passed the test's deadline, and how many
    /// came while or after a service died (schema 3).
    #[serde(default)]
    pub timed_out: u32,
    #[serde(default)]
    pub infrastructure: u32,
    /// Its last failure: each failing phase's traceback and captured output,
    /// and the bundle file with the services' log lines around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<TestFailure>,
}

/// A test's last failure, as the failure bundle keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFailure {
    pub repeat: u32,
    pub phases: Vec<crate::cluster::pytest::Failure>,
    /// `failures/<test>-repeat-<k>.txt`, relative to the run's folder.
    #[serde(default)]
    pub bundle: Option<String>,
}

/// The median of `xs` (0 for none).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Each test's result over `runs`, in the order the tests first ran.
pub fn per_test(runs: &[Execution]) -> Vec<TestResult> {
    let mut ids: Vec<&str> = Vec::new();
    for e in runs {
        if !ids.contains(&e.id.as_str()) {
            ids.push(&e.id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let mine: Vec<&Execution> = runs.iter().filter(|e| e.id == id).collect();
            let count = |s: Status| mine.iter().filter(|e| e.status == s).count() as u32;
            let (passed, failed, errors, skipped) = (
                count(Status::Passed),
                count(Status::Failed),
                count(Status::Error),
                count(Status::Skipped),
            );
            let ran = passed + failed + errors;
            let secs: Vec<f64> = mine
                .iter()
                .filter(|e| e.status != Status::Skipped)
                .map(|e| e.secs)
                .collect();
            let verdict = match (passed, failed + errors) {
                (0, 0) => Verdict::Skipped,
                (_, 0) => Verdict::Passed,
                (0, _) => Verdict::Failed,
                _ => Verdict::Flaky,
            };
            TestResult {
                id: id.to_string(),
                runs: mine.len() as u32,
                passed,
                failed,
                errors,
                skipped,
                pass_rate: (ran > 0).then(|| r3(f64::from(passed) / f64::from(ran))),
                min_s: r3(secs.iter().copied().reduce(f64::min).unwrap_or(0.0)),
                median_s: r3(median(&secs)),
                max_s: r3(secs.iter().copied().reduce(f64::max).unwrap_or(0.0)),
                verdict,
                timed_out: 0,
                infrastructure: 0,
                failure: None,
            }
        })
        .collect()
}

/// The table of a repeated run, one line per test, for the terminal.
pub fn table(results: &[TestResult]) -> String {
    let width = results.iter().map(|r| r.id.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:>4} {:>4} {:>4} {:>6}  {:>7} {:>7} {:>7}  verdict\n",
        "test", "runs", "pass", "fail", "rate", "min s", "med s", "max s"
    );
    for r in results {
        let rate = r
            .pass_rate
            .map_or("-".to_string(), |p| format!("{:.0}%", p * 100.0));
        out.push_str(&format!(
            "{:<width$}  {:>4} {:>4} {:>4} {:>6}  {:>7.2} {:>7.2} {:>7.2}  {}\n",
            r.id,
            r.runs,
            r.passed,
            r.failed + r.errors,
            rate,
            r.min_s,
            r.median_s,
            r.max_s,
            r.verdict.word()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: &str, repeat: u32, status: Status, secs: f64) -> Execution {
        Execution {
            id: id.into(),
            repeat,
            status,
            secs,
        }
    }

    #[test]
    fn a_test_that_passed_and_failed_is_flaky_with_its_rate_and_durations() {
        let runs = vec![
            ex("t::a", 1, Status::Passed, 1.0),
            ex("t::b", 1, Status::Failed, 2.0),
            ex("t::a", 2, Status::Passed, 3.0),
            ex("t::b", 2, Status::Passed, 4.0),
            ex("t::a", 3, Status::Passed, 2.0),
            ex("t::b", 3, Status::Error, 6.0),
            ex("t::c", 1, Status::Skipped, 0.0),
        ];
        let r = per_test(&runs);
        assert_eq!(
            r.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t::a", "t::b", "t::c"]
        );
        assert_eq!(r[0].verdict, Verdict::Passed);
        assert_eq!((r[0].runs, r[0].passed, r[0].pass_rate), (3, 3, Some(1.0)));
        assert_eq!((r[0].min_s, r[0].median_s, r[0].max_s), (1.0, 2.0, 3.0));
        assert_eq!(r[1].verdict, Verdict::Flaky);
        assert_eq!(
            (r[1].failed, r[1].errors, r[1].pass_rate),
            (1, 1, Some(0.333))
        );
        assert_eq!(r[2].verdict, Verdict::Skipped);
        assert_eq!((r[2].pass_rate, r[2].min_s), (None, 0.0));
        assert!(table(&r).contains("flaky"));
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
