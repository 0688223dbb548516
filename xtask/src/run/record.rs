//! What a finished run records besides its result: each test over every
//! pass (the table a repeated run prints), its failures grouped by cause
//! with the services' log lines around each kept in `failures/`, its
//! timeline, its line in the checkout's history, and `report.html`.

use std::fs;
use std::path::{Path, PathBuf};

use super::repeat::repeat_dir;
use super::Run;
use crate::checkout;
use crate::cluster::pytest::Timeline;
use crate::docker::Docker;
use crate::history::{self, Entry, TestLine};
use crate::repeats::causes::{self, Cause, Occurrence};
use crate::repeats::{executions, per_test, table};
use crate::summary::{PassSpan, PytestSpan, RepeatInfo, RunTimeline, Summary};
use crate::workspace::Workspace;

/// Seconds of service log kept before a failing test began and after it ended.
pub(super) const BEFORE_S: f64 = 5.0;
pub(super) const AFTER_S: f64 = 2.0;
/// At most this many lines of each service's log per failure.
const LINES: usize = 40;

impl Run {
    /// Fill in the run's per-test table, causes, timeline and repeats;
    /// append it to the history; write report.html (its path, if written).
    pub fn record(
        &self,
        ws: &Workspace,
        docker: &Docker,
        summary: &mut Summary,
    ) -> Option<PathBuf> {
        let runs = if self.passes.is_empty() {
            // Said already when the run concluded.
            let (junit, _) = super::junit_in(&self.results, "");
            executions(&junit, 1)
        } else {
            self.passes.iter().flat_map(|p| p.executions()).collect()
        };
        summary.tests = per_test(&runs);
        self.bundle_failures(summary);
        let occurrences: Vec<Occurrence> =
            self.passes.iter().flat_map(|p| p.occurrences()).collect();
        summary.causes = causes::group(&occurrences);
        self.keep_failure_logs(&mut summary.causes, &occurrences);
        summary.timeline = Some(self.timeline());
        if self.plan.repeats() {
            summary.repeat = Some(RepeatInfo {
                asked: self.plan.times,
                ran: self.passes.len() as u32,
                fresh: self.plan.fresh,
                until_failure: self.plan.until_failure,
            });
            eprint!("{}", table(&summary.tests));
            for c in &summary.causes {
                eprintln!("cause ({}x): {}", c.hits.len(), c.cause);
            }
        }
        let entries = self.append_history(ws, docker, summary);
        let path = self.dir.join("report.html");
        match crate::report::write(&path, summary, &entries) {
            Ok(()) => {
                summary.report = Some("report.html".into());
                Some(path)
            }
            Err(e) => {
                eprintln!("warning: no report: {e:#}");
                None
            }
        }
    }

    fn timeline(&self) -> RunTimeline {
        // A run ended before its pass did (a deadline, an error) has the
        // pass's timeline in its results folder still.
        let unended;
        let passes: &[super::repeat::Pass] = if self.passes.is_empty() {
            unended = Timeline::read(&self.results).map(|t| super::repeat::Pass::of_timeline(1, t));
            unended.as_slice()
        } else {
            &self.passes
        };
        RunTimeline {
            started: self.started,
            phases: self.phases.spans().to_vec(),
            services: self.services.clone(),
            pytest: passes
                .iter()
                .filter_map(|p| {
                    let t = p.timeline.as_ref()?;
                    Some(PytestSpan {
                        repeat: p.repeat,
                        started: t.started,
                        collected: t.collected,
                        ready: t.ready,
                        finished: t.finished,
                    })
                })
                .collect(),
            tests: passes
                .iter()
                .flat_map(|p| {
                    let spans = p.timeline.iter().flat_map(|t| t.tests.iter());
                    spans.map(|t| PassSpan {
                        repeat: p.repeat,
                        test: t.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The services' log lines around each failure, one file per hit under
    /// `failures/`, named in its cause's hits.
    fn keep_failure_logs(&self, causes: &mut [Cause], occurrences: &[Occurrence]) {
        let dir = self.dir.join("failures");
        for (n, cause) in causes.iter_mut().enumerate() {
            for hit in &mut cause.hits {
                let Some((start, end)) = occurrences
                    .iter()
                    .find(|o| o.id == hit.id && o.repeat == hit.repeat)
                    .and_then(|o| o.span)
                else {
                    continue;
                };
                let logs = self.logs_of(hit.repeat);
                let text = excerpt(&logs, start - BEFORE_S, end + AFTER_S);
                let text = if text.is_empty() {
                    text
                } else {
                    format!(
                        "{} in repeat {}: every service's log from {BEFORE_S} s before the test to {AFTER_S} s after it\n{text}",
                        hit.id, hit.repeat
                    )
                };
                if text.is_empty() || fs::create_dir_all(&dir).is_err() {
                    continue;
                }
                let name = format!(
                    "cause-{}-repeat-{}-{}.log",
                    n + 1,
                    hit.repeat,
                    slug(&hit.id)
                );
                if fs::write(dir.join(&name), text).is_ok() {
                    hit.logs = Some(format!("failures/{name}"));
                }
            }
        }
    }

    /// The folder with the services' logs of pass `k`'s cluster.
    pub(super) fn logs_of(&self, k: u32) -> PathBuf {
        let fresh = repeat_dir(&self.dir, k).join("logs");
        if self.plan.fresh && fresh.is_dir() {
            fresh
        } else {
            self.dir.join("logs")
        }
    }

    /// One line in the checkout's history (under its lock), and every line
    /// there now (the report charts them).
    fn append_history(&self, ws: &Workspace, docker: &Docker, summary: &Summary) -> Vec<Entry> {
        let entry = Entry {
            schema: history::SCHEMA,
            run_id: self.id.clone(),
            finished: crate::clock::unix_now(),
            command: if summary.compose_project == ws.cluster_project() {
                "test".into()
            } else {
                "dist-test".into()
            },
            project: summary.project.clone(),
            python: summary.python.clone(),
            repeats: self.passes.len().max(1) as u32,
            exit_code: summary.exit_code,
            tests: summary.tests.iter().map(TestLine::of).collect(),
        };
        match checkout::lock(ws, docker, "appending to the history", self.wait) {
            Ok(_lock) => {
                if let Err(e) = history::append(ws, &entry) {
                    eprintln!("warning: {e:#}");
                }
            }
            Err(e) => eprintln!("warning: the run is not in the history: {e:#}"),
        }
        history::read(ws)
    }
}

/// Every service log's lines between `from` and `to`, under a header each
/// (saying so when a service logged nothing then); empty without logs.
pub(super) fn excerpt(logs: &Path, from: f64, to: f64) -> String {
    let Ok(entries) = fs::read_dir(logs) else {
        return String::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut out = String::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "log"))
    {
        let text = fs::read_to_string(f).unwrap_or_default();
        let lines = causes::lines_between(&text, from, to, LINES);
        let name = f.file_stem().unwrap_or_default().to_string_lossy();
        if lines.is_empty() {
            out.push_str(&format!("==> {name} <==\n(nothing logged then)\n"));
        } else {
            out.push_str(&format!("==> {name} <==\n{}\n", lines.join("\n")));
        }
    }
    out
}

/// `tests/a.py::test_b[1]` -> `test_b-1`
pub(super) fn slug(id: &str) -> String {
    let last = id.rsplit("::").next().unwrap_or(id);
    let s: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').chars().take(60).collect()
}
