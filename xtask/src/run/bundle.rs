//! The failure bundle: for each test that did not pass, its verdict (timed
//! out, infrastructure, failed), each failing phase's full traceback and
//! captured output (from the harness's timeline), and one file under
//! `failures/` with all of that and every service's log lines around it.
//! A test that pytest never got to report (it was ended while the test
//! ran) is added from the timeline.

use std::fs;

use super::record::{excerpt, slug, AFTER_S, BEFORE_S};
use super::Run;
use crate::cluster::pytest::{TestSpan, Timeline};
use crate::repeats::{TestFailure, TestResult, Verdict};
use crate::summary::Summary;

impl Run {
    /// Each pass's timeline, with its pass number.
    fn timelines(&self) -> Vec<(u32, Timeline)> {
        if self.passes.is_empty() {
            return Timeline::read(&self.results)
                .map(|t| vec![(1, t)])
                .unwrap_or_default();
        }
        self.passes
            .iter()
            .filter_map(|p| Some((p.repeat, p.timeline.clone()?)))
            .collect()
    }

    /// Verdicts, failures and bundle files into the summary's per-test table.
    pub(super) fn bundle_failures(&self, summary: &mut Summary) {
        for (repeat, timeline) in self.timelines() {
            // The first time a service of this pass's cluster was seen dead:
            // a test that failed from then on failed with the cluster under
            // it. With `--fresh` each pass has a cluster of its own; without,
            // a death in one pass is under every later one.
            let died = summary
                .dead_services
                .iter()
                .filter(|d| !self.plan.fresh || d.pass.is_none_or(|p| p == repeat))
                .filter_map(|d| d.ended)
                .reduce(f64::min);
            for span in &timeline.tests {
                let failed = matches!(span.outcome.as_str(), "failed" | "error" | "running");
                // Past its own deadline, or still running at the suite's.
                let timed_out = span.verdict.as_deref() == Some("timed out")
                    || (span.outcome == "running" && self.suite_timed_out);
                if !failed && !timed_out {
                    continue;
                }
                let infrastructure = died.is_some_and(|d| span.end.unwrap_or(f64::MAX) >= d);
                let i = match summary.tests.iter().position(|t| t.id == span.id) {
                    Some(i) => i,
                    None if timed_out || span.outcome == "running" => {
                        summary.tests.push(never_reported(&span.id));
                        summary.tests.len() - 1
                    }
                    None => continue,
                };
                let bundle = self.write_bundle((i, repeat), span, infrastructure);
                let t = &mut summary.tests[i];
                t.timed_out += u32::from(timed_out);
                t.infrastructure += u32::from(infrastructure);
                t.failure = Some(TestFailure {
                    repeat,
                    phases: span.failures.clone(),
                    bundle,
                });
            }
        }
        for t in &mut summary.tests {
            if t.passed == 0 && t.failed + t.errors > 0 {
                if t.infrastructure > 0 {
                    t.verdict = Verdict::Infrastructure;
                } else if t.timed_out > 0 {
                    t.verdict = Verdict::TimedOut;
                }
            }
        }
    }

    /// `failures/<n>-<test>-repeat-<k>.txt` (`n`: its place in the run's
    /// table, as two tests of different modules may share a name): the
    /// test's failing phases and the services' log lines around it; its
    /// path relative to the run folder.
    fn write_bundle(
        &self,
        (index, repeat): (usize, u32),
        span: &TestSpan,
        infrastructure: bool,
    ) -> Option<String> {
        let verdict = if infrastructure {
            "infrastructure (a service of the cluster died while or before it ran)"
        } else if span.verdict.as_deref() == Some("timed out") || span.outcome == "running" {
            "timed out (see timeouts/ for every process's stacks)"
        } else {
            "failed"
        };
        let mut text = format!("{}\nrepeat {repeat}: {verdict}\n", span.id);
        for f in &span.failures {
            text.push_str(&format!("\n===== {} =====\n{}\n", f.when, f.longrepr));
            for (name, body) in [
                ("stdout", &f.stdout),
                ("stderr", &f.stderr),
                ("log", &f.log),
            ] {
                if !body.is_empty() {
                    text.push_str(&format!(
                        "\n----- captured {name} ({}) -----\n{body}\n",
                        f.when
                    ));
                }
            }
        }
        let end = span.end.unwrap_or_else(crate::clock::unix_now);
        let logs = excerpt(&self.logs_of(repeat), span.start - BEFORE_S, end + AFTER_S);
        if !logs.is_empty() {
            text.push_str(&format!(
                "\n===== every service's log from {BEFORE_S} s before the test to {AFTER_S} s after it =====\n{logs}"
            ));
        }
        let dir = self.dir.join("failures");
        let name = format!("{}-{}-repeat-{repeat}.txt", index + 1, slug(&span.id));
        fs::create_dir_all(&dir).ok()?;
        fs::write(dir.join(&name), text).ok()?;
        Some(format!("failures/{name}"))
    }
}

/// A test pytest never reported: it was ended while the test ran.
fn never_reported(id: &str) -> TestResult {
    TestResult {
        id: id.to_string(),
        runs: 1,
        passed: 0,
        failed: 1,
        errors: 0,
        skipped: 0,
        pass_rate: Some(0.0),
        min_s: 0.0,
        median_s: 0.0,
        max_s: 0.0,
        verdict: Verdict::Failed,
        timed_out: 0,
        infrastructure: 0,
        failure: None,
    }
}
