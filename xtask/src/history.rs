//! The checkout's run history: `target/dist-test/history.jsonl`, one JSON
//! line per finished run (`dist-test` or `test`) with each test's result
//! (schema in docs/history-schema.md), appended with the checkout lock
//! held. `cargo xtask history` reads it: per test, the pass rate and the
//! median duration over the last runs, and a flag on a test whose latest
//! median is more than a factor slower than its median before.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::repeats::{median, TestResult};
use crate::workspace::Workspace;

/// The version of a history line's layout.
pub const SCHEMA: u32 = 1;

/// One run, one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub schema: u32,
    pub run_id: String,
    /// When it ended (Unix seconds).
    pub finished: f64,
    /// `dist-test` or `test`.
    pub command: String,
    /// The project folder tested.
    pub project: String,
    #[serde(default)]
    pub python: Option<String>,
    /// How many times the selection ran.
    pub repeats: u32,
    pub exit_code: i32,
    pub tests: Vec<TestLine>,
}

/// One test in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestLine {
    pub id: String,
    pub runs: u32,
    pub passed: u32,
    /// Failures and errors.
    pub failed: u32,
    /// The median duration of its executions that were not skipped; `null`
    /// when it only skipped.
    pub median_s: Option<f64>,
}

impl TestLine {
    pub fn of(r: &TestResult) -> TestLine {
        TestLine {
            id: r.id.clone(),
            runs: r.runs,
            passed: r.passed,
            failed: r.failed + r.errors,
            median_s: (r.passed + r.failed + r.errors > 0).then_some(r.median_s),
        }
    }
}

pub fn path(ws: &Workspace) -> PathBuf {
    ws.target.join("history.jsonl")
}

/// Append `entry` (the caller holds the checkout lock).
pub fn append(ws: &Workspace, entry: &Entry) -> Result<()> {
    let path = path(ws);
    let mut line = serde_json::to_string(entry).context("serialising a history line")?;
    line.push('\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(line.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Every line that reads, oldest first; lines of another schema or torn by
/// a crash are skipped.
pub fn read(ws: &Workspace) -> Vec<Entry> {
    parse(&fs::read_to_string(path(ws)).unwrap_or_default())
}

/// The lines of a history file that read, in order.
fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .filter(|e| e.schema == SCHEMA)
        .collect()
}

/// One test's history over the runs looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub id: String,
    /// The runs it ran in (oldest first): `(run id, median s, passed, failed)`.
    pub points: Vec<(String, Option<f64>, u32, u32)>,
    pub pass_rate: Option<f64>,
    /// The latest median over the median of the earlier ones, when both exist.
    pub slowdown: Option<f64>,
    /// The latest median less the median of the earlier ones (seconds).
    pub added_s: Option<f64>,
}

impl Trend {
    /// Slower than `factor` times before, and by more than `min_s` seconds:
    /// a test of a few tenths of a second jitters by half its time on a busy
    /// machine, which is no slowdown anyone should chase.
    pub fn flagged(&self, factor: f64, min_s: f64) -> bool {
        self.slowdown.is_some_and(|s| s > factor) && self.added_s.is_some_and(|a| a > min_s)
    }
}

/// Each test's trend over the last `last` runs of `entries`, for the tests
/// whose id contains `filter` (all when empty), in the order first seen.
pub fn trends(entries: &[Entry], filter: &str, last: usize) -> Vec<Trend> {
    let window = &entries[entries.len().saturating_sub(last)..];
    let mut ids: Vec<&str> = Vec::new();
    for t in window.iter().flat_map(|e| &e.tests) {
        if t.id.contains(filter) && !ids.contains(&t.id.as_str()) {
            ids.push(&t.id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let points: Vec<_> = window
                .iter()
                .filter_map(|e| {
                    let t = e.tests.iter().find(|t| t.id == id)?;
                    Some((e.run_id.clone(), t.median_s, t.passed, t.failed))
                })
                .collect();
            let (passed, failed) = points.iter().fold((0, 0), |(p, f), x| (p + x.2, f + x.3));
            let timed: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
            let (slowdown, added_s) = match timed.split_last() {
                Some((latest, earlier)) if !earlier.is_empty() => {
                    let before = median(earlier);
                    (
                        (before > 0.0).then(|| latest / before),
                        Some(latest - before),
                    )
                }
                _ => (None, None),
            };
            Trend {
                id: id.to_string(),
                pass_rate: (passed + failed > 0)
                    .then(|| f64::from(passed) / f64::from(passed + failed)),
                points,
                slowdown,
                added_s,
            }
        })
        .collect()
}

/// `▁▃▅█`: the medians as a line of block characters (`·` where it skipped).
pub fn sparkline(points: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = points.iter().flatten().copied().fold(0.0, f64::max);
    points
        .iter()
        .map(|p| match p {
            Some(v) if max > 0.0 => BARS[((v / max) * 7.0).round() as usize],
            Some(_) => BARS[0],
            None => '·',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str, tests: &[(&str, f64, u32)]) -> Entry {
        Entry {
            schema: SCHEMA,
            run_id: run.into(),
            finished: 0.0,
            command: "dist-test".into(),
            project: "/p".into(),
            python: Some("3.14".into()),
            repeats: 1,
            exit_code: 0,
            tests: tests
                .iter()
                .map(|(id, secs, failed)| TestLine {
                    id: (*id).into(),
                    runs: 1,
                    passed: 1 - failed,
                    failed: *failed,
                    median_s: Some(*secs),
                })
                .collect(),
        }
    }

    #[test]
    fn a_test_slower_than_its_median_before_is_flagged() {
        let entries = vec![
            entry("r1", &[("t::a", 1.0, 0), ("t::b", 2.0, 0)]),
            entry("r2", &[("t::a", 1.2, 0), ("t::b", 2.0, 1)]),
            entry("r3", &[("t::a", 1.1, 0), ("t::b", 2.1, 0)]),
            entry("r4", &[("t::a", 3.3, 0), ("t::b", 2.0, 0)]),
        ];
        let t = trends(&entries, "", 20);
        assert_eq!(t.len(), 2);
        assert!(t[0].flagged(1.5, 0.5), "{:?}", t[0]);
        assert!((t[0].slowdown.unwrap() - 3.0).abs() < 1e-9);
        assert!(!t[1].flagged(1.5, 0.5));
        assert_eq!(t[1].pass_rate, Some(0.75));
        // The window: the last two runs only.
        let t = trends(&entries, "t::a", 2);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].points.len(), 2);
        assert_eq!(sparkline(&[Some(1.0), None, Some(2.0)]), "▅·█");
    }

    #[test]
    fn a_short_test_that_jitters_is_not_flagged() {
        // 0.4 s to 0.65 s is x1.6 but a quarter of a second: noise.
        let entries = vec![
            entry("r1", &[("t::short", 0.4, 0)]),
            entry("r2", &[("t::short", 0.4, 0)]),
            entry("r3", &[("t::short", 0.65, 0)]),
        ];
        let t = trends(&entries, "", 20);
        assert!(t[0].slowdown.unwrap() > 1.5);
        assert!(!t[0].flagged(1.5, 0.5), "{:?}", t[0]);
        assert!(t[0].flagged(1.5, 0.1), "a smaller floor flags it");
    }

    #[test]
    fn a_line_round_trips_and_other_schemas_and_torn_lines_are_skipped() {
        let e = entry("r1", &[("t::a", 1.0, 0)]);
        let line = serde_json::to_string(&e).unwrap();
        let mut other = e.clone();
        other.schema = SCHEMA + 1;
        other.run_id = "r2".into();
        let text = format!(
            "{line}\n{}\n{}\n{line}\n",
            serde_json::to_string(&other).unwrap(),
            &line[..line.len() / 2]
        );
        let read = parse(&text);
        assert_eq!(read, vec![e.clone(), e]);
    }
}
