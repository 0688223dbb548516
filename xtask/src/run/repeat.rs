//! A run's repeats: after each pass of pytest its results move into
//! `repeats/<k>/` (JUnit file, timeline, pytest's log) and are read into
//! executions, failures and test spans; at the end the repeats' JUnit files
//! are merged into the run's `pytest/junit.xml` (one `<testsuite>` per
//! repeat), so that every tool that reads it sees every execution.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Run;
use crate::cluster::pytest::{Timeline, TIMELINE_FILE};
use crate::cluster::spec::{DEADLINES_DIR, READY_FILE};
use crate::junit::JunitReport;
use crate::repeats::causes::Occurrence;
use crate::repeats::{executions, Execution};

/// What `--repeat`, `--fresh` and `--until-failure` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// How many times the selection runs (at most, with `until_failure`).
    pub times: u32,
    /// A new cluster for each repeat.
    pub fresh: bool,
    /// Stop after the first repeat in which a test failed.
    pub until_failure: bool,
}

impl Plan {
    /// What the command line asks for, with `fresh` clusters or on one.
    pub fn of(args: &crate::cli::RepeatArgs, fresh: bool) -> Plan {
        let times = match (args.repeat, args.until_failure) {
            (Some(n), _) => n,
            (None, true) => 100,
            (None, false) => 1,
        };
        Plan {
            times,
            fresh,
            until_failure: args.until_failure,
        }
    }
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            times: 1,
            fresh: false,
            until_failure: false,
        }
    }
}

impl Plan {
    /// More than one pass: results go to `repeats/<k>/`.
    pub fn repeats(&self) -> bool {
        self.times > 1 || self.until_failure
    }
}

/// What one pass left.
#[derive(Debug, Default, Clone)]
pub struct Pass {
    pub repeat: u32,
    pub junit: JunitReport,
    pub timeline: Option<Timeline>,
    pub pytest_code: Option<i32>,
}

impl Pass {
    /// A pass known by its timeline only (it did not end).
    pub fn of_timeline(repeat: u32, timeline: Timeline) -> Pass {
        Pass {
            repeat,
            junit: timeline.as_junit(),
            timeline: Some(timeline),
            pytest_code: None,
        }
    }

    pub fn failed(&self) -> bool {
        self.pytest_code != Some(0) || !self.junit.failures.is_empty()
    }

    pub fn executions(&self) -> Vec<Execution> {
        executions(&self.junit, self.repeat)
    }

    /// Each failure and error, with when its test ran where the timeline
    /// knows.
    pub fn occurrences(&self) -> Vec<Occurrence> {
        self.junit
            .failures
            .iter()
            .map(|f| Occurrence {
                id: f.id.clone(),
                repeat: self.repeat,
                message: f.message.clone(),
                span: self.timeline.as_ref().and_then(|t| {
                    let s = t.tests.iter().find(|s| s.id == f.id)?;
                    Some((s.start, s.end.unwrap_or(s.start)))
                }),
            })
            .collect()
    }
}

/// `repeats/<k>` of a run folder.
pub fn repeat_dir(run_dir: &Path, k: u32) -> PathBuf {
    run_dir.join("repeats").join(k.to_string())
}

impl Run {
    /// The current pass of pytest ended: read what it left; in a repeated
    /// run, move it into `repeats/<k>/` and clear the results folder for the
    /// next. Whether to go on.
    pub fn end_pass(&mut self) -> Result<bool> {
        let k = self.pass;
        let from = if self.plan.repeats() {
            let to = repeat_dir(&self.dir, k);
            fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
            for (dir, name) in [
                (&self.results, "junit.xml"),
                (&self.results, TIMELINE_FILE),
                (&self.dir, "pytest.log"),
            ] {
                // What pytest did not get to write is not there.
                let _ = fs::rename(dir.join(name), to.join(name));
            }
            let _ = fs::remove_file(self.results.join(READY_FILE));
            // The next pytest numbers its requests from 1 again.
            let requests = self.results.join(DEADLINES_DIR);
            let _ = fs::rename(&requests, to.join(DEADLINES_DIR));
            crate::fsx::writable_dir(&requests)?;
            to
        } else {
            self.results.clone()
        };
        let (junit, said) = super::junit_in(&from, &format!(" in repeat {k}"));
        if let Some(line) = said {
            eprintln!("{line}");
        }
        let pass = Pass {
            repeat: k,
            junit,
            timeline: Timeline::read(&from),
            pytest_code: self.pytest_code,
        };
        let failed = pass.failed();
        self.passes.push(pass);
        if self.plan.repeats() {
            let c = self
                .passes
                .last()
                .map(|p| p.junit.counts())
                .unwrap_or_default();
            eprintln!(
                "repeat {k}/{}: {} passed, {} failed, {} errors",
                self.plan.times, c.passed, c.failed, c.errors
            );
        }
        if failed && self.plan.until_failure {
            eprintln!(
                "--until-failure: repeat {k} failed; stopping, with this cluster's logs kept"
            );
            return Ok(false);
        }
        Ok(k < self.plan.times && !crate::interrupt::interrupted())
    }

    /// The exit code pytest would have given the whole: the first failing
    /// pass's, else 0; `None` when no pass ended.
    pub fn passes_code(&self) -> Option<i32> {
        let codes: Vec<i32> = self.passes.iter().filter_map(|p| p.pytest_code).collect();
        if codes.len() < self.passes.len() || codes.is_empty() {
            return None;
        }
        Some(codes.iter().copied().find(|c| *c != 0).unwrap_or(0))
    }

    /// Merge the repeats' JUnit files into `pytest/junit.xml`.
    pub fn merge_junit(&self) -> Result<()> {
        let mut suites = String::new();
        for p in &self.passes {
            let path = repeat_dir(&self.dir, p.repeat).join("junit.xml");
            let Ok(xml) = fs::read_to_string(&path) else {
                continue;
            };
            suites.push_str(&suites_of(&xml, p.repeat));
        }
        let merged = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites name=\"dist-test {}\">\n{suites}</testsuites>\n",
            self.id
        );
        let out = self.results.join("junit.xml");
        fs::write(&out, merged).with_context(|| format!("writing {}", out.display()))
    }
}

/// The `<testsuite>` elements of one repeat's JUnit file, each named for
/// its repeat (`pytest (repeat 2)`).
fn suites_of(xml: &str, repeat: u32) -> String {
    let body = xml
        .trim_start()
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>").map(|(_, b)| b))
        .unwrap_or(xml)
        .trim();
    let body = body
        .strip_prefix("<testsuites>")
        .or_else(|| {
            body.strip_prefix("<testsuites")
                .and_then(|b| b.split_once('>').map(|(_, r)| r))
        })
        .map(|b| b.trim_end().trim_end_matches("</testsuites>"))
        .unwrap_or(body);
    body.replacen(
        "<testsuite ",
        &format!("<testsuite repeat=\"{repeat}\" "),
        1,
    )
    .replacen(
        "name=\"pytest\"",
        &format!("name=\"pytest (repeat {repeat})\""),
        1,
    ) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::parse_junit;

    const ONE: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="1" time="1.5"><testcase classname="tests.test_a" name="test_x" file="tests/test_a.py" line="3" time="1.2" /></testsuite></testsuites>"#;

    #[test]
    fn merged_repeats_read_as_every_execution() {
        let merged = format!(
            "<?xml version=\"1.0\"?>\n<testsuites>\n{}{}</testsuites>\n",
            suites_of(ONE, 1),
            suites_of(&ONE.replace("time=\"1.2\"", "time=\"2.0\""), 2)
        );
        assert!(merged.contains("name=\"pytest (repeat 2)\""), "{merged}");
        let r = parse_junit(&merged).unwrap();
        assert_eq!(r.tests.len(), 2);
        assert_eq!(r.counts().passed, 2);
        assert_eq!(r.secs, Some(3.0));
        assert_eq!(executions(&r, 1).len(), 2);
    }
}
