//! Run folders, phase timings, JUnit counts and `summary.json`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// Seconds spent in each phase, in the order they ran.
#[derive(Debug, Default, Clone)]
pub struct Phases(pub Vec<(&'static str, f64)>);

impl Phases {
    /// Time `f` as phase `name` and print one line when it ends; on a
    /// terminal a live line shows what the phase is doing meanwhile.
    pub fn time<T>(
        &mut self,
        name: &'static str,
        quiet: bool,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.timed(name, quiet, true, f)
    }

    /// [`Phases::time`] for a phase whose own output streams to the
    /// terminal (the tests): no live line over it.
    pub fn time_streaming<T>(
        &mut self,
        name: &'static str,
        quiet: bool,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.timed(name, quiet, false, f)
    }

    fn timed<T>(
        &mut self,
        name: &'static str,
        quiet: bool,
        live: bool,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let live = live.then(|| crate::ui::Live::start(name));
        let out = f();
        drop(live);
        let secs = start.elapsed().as_secs_f64();
        self.0.push((name, secs));
        if !quiet {
            let mark = if out.is_ok() { "done" } else { "FAILED" };
            eprintln!("{}", crate::ui::step_line(name, secs, mark));
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errors: u64,
    /// Skip reasons with how often each occurred.
    pub skip_reasons: Vec<(String, u64)>,
}

/// Counts from pytest's JUnit XML: the `<testsuite>` attributes, and the
/// messages of the `<skipped>` elements.
pub fn parse_junit(xml: &str) -> Counts {
    let mut c = Counts::default();
    let mut tests = 0;
    for suite in xml.split("<testsuite ").skip(1) {
        let head = &suite[..suite.find('>').unwrap_or(suite.len())];
        tests += attr(head, "tests")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        c.failed += attr(head, "failures")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        c.errors += attr(head, "errors")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        c.skipped += attr(head, "skipped")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    c.passed = tests.saturating_sub(c.failed + c.errors + c.skipped);
    for skip in xml.split("<skipped ").skip(1) {
        let head = &skip[..skip.find('>').unwrap_or(skip.len())];
        let msg = attr(head, "message").map(unescape_xml).unwrap_or_default();
        match c.skip_reasons.iter_mut().find(|(m, _)| *m == msg) {
            Some((_, n)) => *n += 1,
            None => c.skip_reasons.push((msg, 1)),
        }
    }
    c
}

fn attr<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}=\"");
    let start = format!(" {head}").find(&pat)? + pat.len() - 1;
    let rest = &head[start..];
    Some(&rest[..rest.find('"')?])
}

fn unescape_xml(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A service that was not running when the tests ended.
#[derive(Debug, Clone)]
pub struct DeadService {
    pub service: String,
    pub state: String,
    pub exit_code: Option<i64>,
    pub last_lines: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub run_id: String,
    pub project: String,
    pub compose_project: String,
    pub counts: Counts,
    pub exit_code: i32,
    pub phases: Phases,
    pub dead_services: Vec<DeadService>,
    pub error: Option<String>,
}

impl Summary {
    pub fn to_json(&self) -> String {
        let c = &self.counts;
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"run_id\": {},", json_str(&self.run_id));
        let _ = writeln!(s, "  \"project\": {},", json_str(&self.project));
        let _ = writeln!(
            s,
            "  \"compose_project\": {},",
            json_str(&self.compose_project)
        );
        let _ = writeln!(s, "  \"passed\": {},", c.passed);
        let _ = writeln!(s, "  \"failed\": {},", c.failed);
        let _ = writeln!(s, "  \"skipped\": {},", c.skipped);
        let _ = writeln!(s, "  \"errors\": {},", c.errors);
        let _ = writeln!(s, "  \"exit_code\": {},", self.exit_code);
        s.push_str("  \"phases\": {");
        let phases: Vec<String> = ["build", "up", "ready", "tests", "teardown"]
            .iter()
            .filter_map(|p| self.phases.get(p).map(|v| format!("\"{p}_s\": {v:.2}")))
            .collect();
        s.push_str(&phases.join(", "));
        s.push_str("},\n");
        s.push_str("  \"skip_reasons\": [");
        let reasons: Vec<String> = c
            .skip_reasons
            .iter()
            .map(|(m, n)| format!("{{\"reason\": {}, \"count\": {n}}}", json_str(m)))
            .collect();
        s.push_str(&reasons.join(", "));
        s.push_str("],\n");
        s.push_str("  \"dead_services\": [");
        let dead: Vec<String> = self
            .dead_services
            .iter()
            .map(|d| {
                format!(
                    "{{\"service\": {}, \"state\": {}, \"exit_code\": {}, \"last_lines\": {}}}",
                    json_str(&d.service),
                    json_str(&d.state),
                    d.exit_code.map_or("null".to_string(), |c| c.to_string()),
                    json_str(&d.last_lines)
                )
            })
            .collect();
        s.push_str(&dead.join(", "));
        s.push_str("],\n");
        let _ = writeln!(
            s,
            "  \"error\": {}",
            self.error.as_deref().map_or("null".to_string(), json_str)
        );
        s.push_str("}\n");
        s
    }
}

pub fn json_str(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for ch in v.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `20261125-143012-4242`: sortable, and unique per process.
pub fn new_run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}{mo:02}{d:02}-{:02}{:02}{:02}-{}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        std::process::id()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Create `target/dist-test/runs/<id>/` and point `target/dist-test/last` at it.
pub fn new_run_dir(target: &Path, run_id: &str) -> Result<PathBuf> {
    let dir = target.join("runs").join(run_id);
    fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    let last = target.join("last");
    let _ = fs::remove_file(&last);
    #[cfg(unix)]
    std::os::unix::fs::symlink(Path::new("runs").join(run_id), &last)
        .with_context(|| format!("linking {}", last.display()))?;
    Ok(dir)
}

/// The last `n` lines of a file, or a note that it could not be read.
pub fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("({}: {e})", path.display()),
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="17" time="40.1" timestamp="2026-11-25T14:00:00" hostname="tests"><testcase classname="a" name="b" time="0.1"><skipped type="pytest.skip" message="No K2IS test data">x</skipped></testcase><testcase classname="a" name="c"><skipped type="pytest.skip" message="No K2IS test data" /></testcase><testcase classname="a" name="d"><skipped type="pytest.skip" message="need &quot;MIB&quot; data" /></testcase></testsuite></testsuites>"#;

    #[test]
    fn junit_counts() {
        let c = parse_junit(JUNIT);
        assert_eq!((c.passed, c.failed, c.skipped, c.errors), (11, 2, 3, 1));
        assert_eq!(
            c.skip_reasons,
            vec![
                ("No K2IS test data".into(), 2),
                ("need \"MIB\" data".into(), 1)
            ]
        );
    }

    #[test]
    fn junit_garbage_counts_nothing() {
        assert_eq!(parse_junit("not xml"), Counts::default());
    }

    #[test]
    fn summary_has_the_required_keys() {
        let mut s = Summary {
            exit_code: 1,
            ..Default::default()
        };
        s.phases.0 = vec![
            ("build", 1.0),
            ("up", 2.0),
            ("ready", 3.0),
            ("tests", 4.0),
            ("teardown", 0.5),
        ];
        s.counts = parse_junit(JUNIT);
        s.error = Some("line1\n\"q\"".into());
        let j = s.to_json();
        for key in [
            "\"passed\": 11",
            "\"failed\": 2",
            "\"skipped\": 3",
            "\"errors\": 1",
            "\"exit_code\": 1",
        ] {
            assert!(j.contains(key), "{key} in {j}");
        }
        assert!(j.contains("\"phases\": {\"build_s\": 1.00, \"up_s\": 2.00, \"ready_s\": 3.00, \"tests_s\": 4.00, \"teardown_s\": 0.50}"), "{j}");
        assert!(j.contains(r#""error": "line1\n\"q\"""#), "{j}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
