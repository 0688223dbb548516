//! Counts and skip reasons from pytest's JUnit XML.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errors: u64,
    /// Skip reasons with how often each occurred, in the order first seen.
    pub skip_reasons: Vec<SkipReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipReason {
    pub reason: String,
    pub count: u64,
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
        match c.skip_reasons.iter_mut().find(|r| r.reason == msg) {
            Some(r) => r.count += 1,
            None => c.skip_reasons.push(SkipReason {
                reason: msg,
                count: 1,
            }),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const JUNIT: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="17" time="40.1" timestamp="2026-11-25T14:00:00" hostname="tests"><testcase classname="a" name="b" time="0.1"><skipped type="pytest.skip" message="No K2IS test data">x</skipped></testcase><testcase classname="a" name="c"><skipped type="pytest.skip" message="No K2IS test data" /></testcase><testcase classname="a" name="d"><skipped type="pytest.skip" message="need &quot;MIB&quot; data" /></testcase></testsuite></testsuites>"#;

    #[test]
    fn junit_counts() {
        let c = parse_junit(JUNIT);
        assert_eq!((c.passed, c.failed, c.skipped, c.errors), (11, 2, 3, 1));
        let reasons: Vec<(&str, u64)> = c
            .skip_reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.count))
            .collect();
        assert_eq!(
            reasons,
            vec![("No K2IS test data", 2), ("need \"MIB\" data", 1)]
        );
    }

    #[test]
    fn junit_garbage_counts_nothing() {
        assert_eq!(parse_junit("not xml"), Counts::default());
    }
}
