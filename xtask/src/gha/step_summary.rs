//! The job summary: a run's result in Markdown, for the file
//! `$GITHUB_STEP_SUMMARY` names.

use std::fmt::Write as _;

use super::markdown::{cell, code, excerpt, fenced, first_line, inline};
use crate::cluster::spec::DeadService;
use crate::junit::{slowest, Counts, Failure, JunitReport, TestCase};
use crate::phases::Phases;
use crate::summary::Summary;

/// How much of a failure's text the summary shows.
pub const EXCERPT_LINES: usize = 30;
pub const EXCERPT_CHARS: usize = 4000;
/// Failures shown with their text; the ones after are listed by id only.
pub const DETAILED_FAILURES: usize = 30;
/// Failures listed at all (the summary file is limited to 1 MiB per step).
pub const LISTED_FAILURES: usize = 300;

/// What [`step_summary`] shows: a run's `summary.json` and its JUnit XML.
#[derive(Debug, Clone, Copy)]
pub struct StepSummary<'a> {
    /// What ran, e.g. `dist-test of libertem-0.16.0`.
    pub title: &'a str,
    /// The xtask's exit code (pytest's, or 1 when the run failed around it).
    pub exit_code: i32,
    pub counts: &'a Counts,
    pub phases: &'a Phases,
    /// For the slowest tests; empty when pytest did not run.
    pub tests: &'a [TestCase],
    pub failures: &'a [Failure],
    pub dead_services: &'a [DeadService],
    /// Why the run failed before or around the tests, if it did.
    pub error: Option<&'a str>,
    /// The run's verdict, when the summary has one (schema 3).
    pub verdict: Option<crate::outcome::RunVerdict>,
}

impl<'a> StepSummary<'a> {
    pub fn of(title: &'a str, summary: &'a Summary, report: &'a JunitReport) -> StepSummary<'a> {
        StepSummary {
            title,
            exit_code: summary.exit_code,
            counts: &summary.counts,
            phases: &summary.phases,
            tests: &report.tests,
            failures: &report.failures,
            dead_services: &summary.dead_services,
            error: summary.error.as_deref(),
            verdict: summary.verdict,
        }
    }
}

/// The job summary, in GitHub-flavoured Markdown: the outcome and counts,
/// the phases, every failure with its reason and the end of its text, the services that
/// died, the ten slowest tests (of those that ran) and the skip reasons.
pub fn step_summary(s: &StepSummary) -> String {
    let mut out = String::new();
    let c = s.counts;
    let ok = s.exit_code == 0 && s.error.is_none() && s.dead_services.is_empty();
    let verdict = match (ok, s.verdict) {
        (true, _) => "✅ passed".to_string(),
        (false, Some(v)) if v != crate::outcome::RunVerdict::Failed => format!("❌ {}", v.word()),
        (false, _) => "❌ failed".to_string(),
    };
    let _ = writeln!(
        out,
        "## {}: {verdict} (exit code {})\n",
        inline(s.title),
        s.exit_code
    );
    out.push_str("| passed | failed | errors | skipped |\n| ---: | ---: | ---: | ---: |\n");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        c.passed, c.failed, c.errors, c.skipped
    );
    if let Some(error) = s.error {
        out.push_str("**The run failed:**\n\n");
        out.push_str(&fenced(error));
    }
    if !s.phases.0.is_empty() {
        out.push_str("### Phases\n\n| phase | seconds |\n| --- | ---: |\n");
        for (name, secs) in &s.phases.0 {
            let _ = writeln!(out, "| {} | {secs:.1} |", cell(name));
        }
        let total: f64 = s.phases.0.iter().map(|(_, secs)| secs).sum();
        let _ = writeln!(out, "| **total** | **{total:.1}** |\n");
    }
    failures(&mut out, s.failures);
    if !s.dead_services.is_empty() {
        let _ = writeln!(out, "### Services that died ({})\n", s.dead_services.len());
        for d in s.dead_services {
            let _ = writeln!(out, "#### {}: {}\n", code(&d.service), inline(&d.state));
            if d.last_lines.trim().is_empty() {
                out.push_str("(no log lines)\n\n");
            } else {
                out.push_str(&fenced(&excerpt(&d.last_lines, 40, EXCERPT_CHARS)));
            }
        }
    }
    let top = slowest(s.tests, 10);
    if !top.is_empty() {
        out.push_str("### Slowest tests\n\n| test | seconds | result |\n| --- | ---: | --- |\n");
        for t in top {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} |",
                cell(&code(&t.id)),
                t.secs,
                t.status.word()
            );
        }
        out.push('\n');
    }
    if !c.skip_reasons.is_empty() {
        out.push_str("### Skip reasons\n\n| reason | tests |\n| --- | ---: |\n");
        for r in c.skip_reasons.iter().take(20) {
            let reason = if r.reason.is_empty() {
                "(none given)"
            } else {
                &r.reason
            };
            let _ = writeln!(out, "| {} | {} |", cell(&inline(reason)), r.count);
        }
        if c.skip_reasons.len() > 20 {
            let _ = writeln!(out, "| …{} more reasons | |", c.skip_reasons.len() - 20);
        }
        out.push('\n');
    }
    out
}

/// Every failure and error: the first ones with their reason and the end of their text,
/// then a list, then a count.
fn failures(out: &mut String, failures: &[Failure]) {
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Failures and errors ({})\n", failures.len());
    for f in failures.iter().take(DETAILED_FAILURES) {
        let _ = writeln!(out, "#### {} ({})\n", code(&f.id), f.kind.word());
        if let Some(file) = &f.file {
            let at = match f.line {
                Some(line) => format!("{file}:{line}"),
                None => file.clone(),
            };
            let _ = writeln!(out, "at {}\n", code(&at));
        }
        let message = first_line(&f.message);
        if !message.is_empty() {
            let _ = writeln!(out, "> {}\n", inline(message));
        }
        out.push_str(&fenced(&excerpt(&f.text, EXCERPT_LINES, EXCERPT_CHARS)));
    }
    let rest = &failures[DETAILED_FAILURES.min(failures.len())..];
    let listed = &rest[..rest.len().min(LISTED_FAILURES - DETAILED_FAILURES)];
    if !listed.is_empty() {
        out.push_str("More, without their text:\n\n");
        for f in listed {
            let _ = writeln!(out, "- {}: {}", code(&f.id), inline(first_line(&f.message)));
        }
        out.push('\n');
    }
    if failures.len() > LISTED_FAILURES {
        let _ = writeln!(out, "…and {} more.\n", failures.len() - LISTED_FAILURES);
    }
    out.push_str(
        "The whole text of each is in the run's `dist-test-results-py<X.Y>` artifact \
         (`pytest/junit.xml`, `pytest.log`).\n\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::tests::sample;
    use crate::junit::{SkipReason, Status};

    fn phases() -> Phases {
        Phases::of(
            [
                ("build", 137.1),
                ("up", 4.1),
                ("ready", 10.1),
                ("tests", 57.8),
                ("teardown", 3.4),
            ]
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect(),
        )
    }

    /// A run with nothing in it: no phases, tests, failures or dead services.
    fn empty<'a>(title: &'a str, counts: &'a Counts, phases: &'a Phases) -> StepSummary<'a> {
        StepSummary {
            title,
            exit_code: 0,
            counts,
            phases,
            tests: &[],
            failures: &[],
            dead_services: &[],
            error: None,
            verdict: None,
        }
    }

    #[test]
    fn summary_of_a_failed_run() {
        let r = sample();
        let (counts, phases) = (r.counts(), phases());
        let dead = vec![DeadService {
            service: "worker-2".into(),
            state: "Exited (137) 2 seconds ago".into(),
            exit_code: Some(137),
            last_lines: "2026-11-25T10:00:00Z distributed.nanny - INFO - Worker process 42 was killed by signal 9\n".into(),
            oom_killed: false,
            ended: None,
            pass: None,
        }];
        let md = step_summary(&StepSummary {
            exit_code: 1,
            tests: &r.tests,
            failures: &r.failures,
            dead_services: &dead,
            ..empty("dist-test of libertem-0.16.0", &counts, &phases)
        });
        assert!(
            md.starts_with("## dist-test of libertem-0.16.0: ❌ failed (exit code 1)\n\n"),
            "{md}"
        );
        assert!(md.contains("| passed | failed | errors | skipped |\n| ---: | ---: | ---: | ---: |\n| 3 | 2 | 1 | 1 |\n"), "{md}");
        assert!(md.contains("| build | 137.1 |\n"), "{md}");
        assert!(md.contains("| **total** | **212.5** |\n"), "{md}");
        assert!(md.contains("### Failures and errors (3)\n"), "{md}");
        assert!(md.contains("#### `tests/test_sample.py::test_fails` (failed)\n\nat `tests/test_sample.py:16`\n\n> AssertionError: values: 50% off, a,b: c\n\n```text\ndef test_fails():\n"), "{md}");
        assert!(
            md.contains("#### `tests/test_sample.py::test_errors` (error)\n"),
            "{md}"
        );
        assert!(
            md.contains("E       RuntimeError: cannot connect to tcp://scheduler:8786\n"),
            "{md}"
        );
        assert!(md.contains("#### `worker-2`: Exited (137) 2 seconds ago\n\n```text\n2026-11-25T10:00:00Z distributed.nanny"), "{md}");
        assert!(md.contains("### Slowest tests\n\n| test | seconds | result |\n| --- | ---: | --- |\n| `tests/test_sample.py::test_passes` | 0.00 | passed |\n"), "{md}");
        assert_eq!(
            md.matches("| `tests/").count(),
            6,
            "the six tests that ran are the ten slowest"
        );
        assert!(!md.contains("test_skipped` |"), "{md}");
        assert!(md.contains("| need raw testdata | 1 |\n"), "{md}");
        // Fences are balanced: every block that opens closes.
        assert_eq!(
            md.matches("```text\n").count() * 2,
            md.matches("```").count(),
            "{md}"
        );
    }

    #[test]
    fn summary_of_a_run_that_failed_before_the_tests() {
        let (counts, phases) = (Counts::default(), Phases::of(phases().0[..2].to_vec()));
        let md = step_summary(&StepSummary {
            exit_code: 1,
            error: Some("the cluster was not ready after 180 s: worker-2 has 0/2 workers"),
            ..empty("dist-test", &counts, &phases)
        });
        assert!(
            md.contains("**The run failed:**\n\n```text\nthe cluster was not ready after 180 s"),
            "{md}"
        );
        assert!(!md.contains("### Failures"), "{md}");
        assert!(!md.contains("### Slowest"), "{md}");
        assert!(md.contains("| **total** | **141.2** |"), "{md}");
    }

    #[test]
    fn a_timed_out_or_infrastructure_run_says_so_in_its_headline() {
        let (counts, phases) = (Counts::default(), phases());
        let mut s = empty("dist-test", &counts, &phases);
        s.exit_code = 75;
        s.verdict = Some(crate::outcome::RunVerdict::Infrastructure);
        assert!(step_summary(&s).starts_with("## dist-test: ❌ infrastructure (exit code 75)"));
        s.exit_code = 1;
        s.verdict = Some(crate::outcome::RunVerdict::TimedOut);
        assert!(step_summary(&s).starts_with("## dist-test: ❌ timed out (exit code 1)"));
    }

    #[test]
    fn summary_of_a_green_run() {
        let counts = Counts {
            passed: 20,
            ..Counts::default()
        };
        let md = step_summary(&empty("dist-test", &counts, &Phases::default()));
        assert_eq!(
            md,
            "## dist-test: ✅ passed (exit code 0)\n\n| passed | failed | errors | skipped |\n\
             | ---: | ---: | ---: | ---: |\n| 20 | 0 | 0 | 0 |\n\n"
        );
    }

    #[test]
    fn the_ten_slowest_in_order_and_names_stay_text() {
        let mut tests: Vec<TestCase> = (0..15)
            .map(|i| TestCase {
                id: format!("tests/test_t.py::test_{i}"),
                file: None,
                line: None,
                secs: f64::from(i),
                status: Status::Passed,
            })
            .collect();
        tests[14].id = "tests/test_t.py::test_p[a|b]".into();
        let counts = Counts {
            skip_reasons: vec![SkipReason {
                reason: String::new(),
                count: 2,
            }],
            ..Counts::default()
        };
        let phases = Phases::default();
        let md = step_summary(&StepSummary {
            tests: &tests,
            ..empty("t", &counts, &phases)
        });
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), 10);
        assert_eq!(
            rows[0],
            "| `tests/test_t.py::test_p[a\\|b]` | 14.00 | passed |"
        );
        assert_eq!(rows[9], "| `tests/test_t.py::test_5` | 5.00 | passed |");
        assert!(md.contains("| (none given) | 2 |\n"), "{md}");
    }

    #[test]
    fn many_failures_are_listed_after_the_detailed_ones() {
        let f = sample().failures[0].clone();
        let many: Vec<Failure> = (0..(LISTED_FAILURES + 5))
            .map(|i| Failure {
                id: format!("tests/test_t.py::test_{i}"),
                ..f.clone()
            })
            .collect();
        let (counts, phases) = (Counts::default(), Phases::default());
        let md = step_summary(&StepSummary {
            exit_code: 1,
            failures: &many,
            ..empty("t", &counts, &phases)
        });
        assert_eq!(
            md.matches("#### `tests/test_t.py::test_").count(),
            DETAILED_FAILURES
        );
        assert!(
            md.contains("- `tests/test_t.py::test_30`: AssertionError: values: 50% off, a,b: c\n"),
            "{md}"
        );
        assert!(md.contains("…and 5 more.\n"), "{md}");
        assert!(md.len() < 1024 * 1024);
    }
}
