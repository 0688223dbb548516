//! The parser on what pytest writes, and the fixtures other modules' tests use.

use super::*;

/// What pytest 8.4.2 wrote with `-o junit_family=xunit1` for a file with a
/// pass, a failure, a fixture error, a skip, a parametrized failure and a
/// test in a class (timestamp and hostname shortened).
pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="1" tests="7" time="0.074" timestamp="2026-11-25T22:30:13+00:00" hostname="tests"><testcase classname="tests.test_sample" name="test_passes" file="tests/test_sample.py" line="8" time="0.002" /><testcase classname="tests.test_sample" name="test_fails" file="tests/test_sample.py" line="12" time="0.001"><failure message="AssertionError: values: 50% off, a,b: c&#10;assert {'a': 2} == {'a': 1}&#10;  &#10;  Differing items:&#10;  {'a': 2} != {'a': 1}&#10;  Use -v to get more diff">def test_fails():
        expected = {"a": 1}
        got = {"a": 2}
&gt;       assert got == expected, "values: 50% off, a,b: c"
E       AssertionError: values: 50% off, a,b: c
E       assert {'a': 2} == {'a': 1}
E         
E         Differing items:
E         {'a': 2} != {'a': 1}
E         Use -v to get more diff

tests/test_sample.py:16: AssertionError</failure></testcase><testcase classname="tests.test_sample" name="test_errors" file="tests/test_sample.py" line="18" time="0.000"><error message="failed on setup with &quot;RuntimeError: cannot connect to tcp://scheduler:8786&quot;">@pytest.fixture
    def broken_fixture():
&gt;       raise RuntimeError("cannot connect to tcp://scheduler:8786")
E       RuntimeError: cannot connect to tcp://scheduler:8786

tests/test_sample.py:6: RuntimeError</error></testcase><testcase classname="tests.test_sample" name="test_skipped" file="tests/test_sample.py" line="22" time="0.000"><skipped type="pytest.skip" message="need raw testdata">/src/tests/test_sample.py:23: need raw testdata</skipped></testcase><testcase classname="tests.test_sample" name="test_param[1]" file="tests/test_sample.py" line="27" time="0.000" /><testcase classname="tests.test_sample" name="test_param[2]" file="tests/test_sample.py" line="27" time="0.001"><failure message="assert 2 == 1">n = 2

    @pytest.mark.parametrize("n", [1, 2])
    def test_param(n):
&gt;       assert n == 1
E       assert 2 == 1

tests/test_sample.py:30: AssertionError</failure></testcase><testcase classname="tests.test_sample.TestGroup" name="test_in_class" file="tests/test_sample.py" line="33" time="0.001" /></testsuite></testsuites>"#;

/// 11 passed, 2 failed, 3 skipped (two reasons), 1 error, in xunit2.
pub(crate) const JUNIT: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="17" time="40.1" timestamp="2026-11-25T14:00:00" hostname="tests"><testcase classname="a" name="b" time="0.1"><skipped type="pytest.skip" message="No K2IS test data">x</skipped></testcase><testcase classname="a" name="c"><skipped type="pytest.skip" message="No K2IS test data" /></testcase><testcase classname="a" name="d"><skipped type="pytest.skip" message="need &quot;MIB&quot; data" /></testcase><testcase classname="a" name="e" time="3.5"><failure message="assert 1 == 2">a.py:3: AssertionError</failure></testcase><testcase classname="a" name="f" time="0.2"><failure message="boom" /></testcase><testcase classname="a" name="g" time="12.25"><error message="failed on setup" /></testcase><testcase classname="a" name="p1" time="1"/><testcase classname="a" name="p2" time="2"/><testcase classname="a" name="p3" time="3"/><testcase classname="a" name="p4" time="4"/><testcase classname="a" name="p5" time="5"/><testcase classname="a" name="p6" time="6"/><testcase classname="a" name="p7" time="7"/><testcase classname="a" name="p8" time="8"/><testcase classname="a" name="p9" time="9"/><testcase classname="a" name="p10" time="10"/><testcase classname="a" name="p11" time="11"/></testsuite></testsuites>"#;

pub(crate) fn sample() -> JunitReport {
    parse_junit(SAMPLE).unwrap()
}

#[test]
fn counts_as_pytest_does() {
    let c = sample().counts();
    assert_eq!((c.passed, c.failed, c.skipped, c.errors), (3, 2, 1, 1));
    assert_eq!(sample().tests.len(), 7);
    let c = parse_junit(JUNIT).unwrap().counts();
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
fn pytest_time_and_the_slowest_that_ran() {
    let r = parse_junit(JUNIT).unwrap();
    assert_eq!(r.secs, Some(40.1));
    let top: Vec<(&str, f64)> = slowest(&r.tests, 3)
        .iter()
        .map(|t| (t.id.as_str(), t.secs))
        .collect();
    assert_eq!(top, [("a::g", 12.25), ("a::p11", 11.0), ("a::p10", 10.0)]);
    // Skipped tests are not among them, however long they took.
    assert!(!slowest(&r.tests, 100).iter().any(|t| t.id == "a::b"));
    assert_eq!(slowest(&r.tests, 100).len(), 14);
    let no_time = parse_junit("<testsuite><testcase name=\"x\"/></testsuite>").unwrap();
    assert_eq!(no_time.secs, None);
}

#[test]
fn ids_are_pytest_node_ids() {
    let ids: Vec<String> = sample().tests.into_iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        [
            "tests/test_sample.py::test_passes",
            "tests/test_sample.py::test_fails",
            "tests/test_sample.py::test_errors",
            "tests/test_sample.py::test_skipped",
            "tests/test_sample.py::test_param[1]",
            "tests/test_sample.py::test_param[2]",
            "tests/test_sample.py::TestGroup::test_in_class",
        ]
    );
}

#[test]
fn failures_and_errors_with_file_line_and_message() {
    let r = sample();
    assert_eq!(r.failures.len(), 3);
    let f = &r.failures[0];
    assert_eq!(f.kind, Kind::Failure);
    assert_eq!(f.id, "tests/test_sample.py::test_fails");
    // The assertion's line from the traceback, not the def's.
    assert_eq!(
        (f.file.as_deref(), f.line),
        (Some("tests/test_sample.py"), Some(16))
    );
    assert!(f
        .message
        .starts_with("AssertionError: values: 50% off, a,b: c\nassert {'a': 2}"));
    assert!(f.text.starts_with("def test_fails():\n"));
    assert!(f.text.ends_with("tests/test_sample.py:16: AssertionError"));

    let e = &r.failures[1];
    assert_eq!(e.kind, Kind::Error);
    assert_eq!(e.id, "tests/test_sample.py::test_errors");
    assert_eq!(e.line, Some(6), "the fixture that raised");
    assert_eq!(
        e.message,
        "failed on setup with \"RuntimeError: cannot connect to tcp://scheduler:8786\""
    );
    assert_eq!(r.failures[2].id, "tests/test_sample.py::test_param[2]");
    assert_eq!(r.failures[2].line, Some(30));
}

#[test]
fn def_lines_are_one_based() {
    // pytest writes line="12" for a def on line 13.
    let r = sample();
    assert_eq!(r.tests[1].line, Some(13));
    assert_eq!(r.tests[1].file.as_deref(), Some("tests/test_sample.py"));
    assert_eq!(r.tests[0].secs, 0.002);
    let status: Vec<Status> = r.tests.iter().map(|t| t.status).collect();
    assert_eq!(
        status[..4],
        [
            Status::Passed,
            Status::Failed,
            Status::Error,
            Status::Skipped
        ]
    );
}

#[test]
fn without_a_repository_frame_the_def_line_is_used() {
    let xml = r#"<testsuite><testcase classname="tests.test_io" name="test_read" file="tests/test_io.py" line="40" time="1.5"><failure message="OSError: boom">/venv/lib/python3.11/site-packages/libertem/io.py:12: OSError</failure></testcase></testsuite>"#;
    let f = &parse_junit(xml).unwrap().failures[0];
    assert_eq!(
        (f.file.as_deref(), f.line),
        (Some("tests/test_io.py"), Some(41))
    );
}

#[test]
fn xunit2_takes_the_location_from_the_traceback() {
    let xml = r#"<testsuites><testsuite><testcase classname="tests.test_io" name="test_read" time="1.5"><failure message="">def test_read():
&gt;       read()

tests/test_io.py:44: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

    def read():
&gt;       raise OSError("boom")
E       OSError: boom

/venv/lib/python3.11/site-packages/libertem/io.py:12: OSError</failure></testcase></testsuite></testsuites>"#;
    let f = &parse_junit(xml).unwrap().failures[0];
    assert_eq!(f.id, "tests.test_io::test_read");
    assert_eq!(
        (f.file.as_deref(), f.line),
        (Some("tests/test_io.py"), Some(44))
    );
    // No message attribute: the first line of the text.
    assert_eq!(f.message, "def test_read():");
}

#[test]
fn not_junit_is_an_error() {
    let err = parse_junit("<html><body/></html>").unwrap_err().to_string();
    assert!(err.contains("no <testsuite>"), "{err}");
    let err = parse_junit("<testsuite>").unwrap_err();
    assert!(
        format!("{err:#}").starts_with("parsing pytest's JUnit XML"),
        "{err:#}"
    );
    assert!(parse_junit("not xml").is_err());
    // No DTDs (and so no entity expansion).
    assert!(parse_junit("<!DOCTYPE x [<!ENTITY a \"b\">]><testsuite/>").is_err());
}

#[test]
fn no_file_is_no_tests() {
    let dir = std::env::temp_dir().join(format!("xtask-junit-{}", std::process::id()));
    assert_eq!(
        read_junit(&dir.join("junit.xml")).unwrap(),
        JunitReport::default()
    );
}

#[test]
fn a_module_skipped_while_collecting_is_kept_apart_from_skipped_tests() {
    // As pytest writes it for LiberTEM's Windows-only tests/test_win_tweaks.py.
    let xml = r#"<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="2" tests="3" time="1.0"><testcase classname="" name="tests.test_win_tweaks" time="0.000"><skipped message="collection skipped">tests/test_win_tweaks.py:7: Windows only</skipped></testcase><testcase classname="tests.io.datasets.test_blo" name="test_blo_dist" time="0.001"><skipped type="pytest.skip" message="need .blo testdata">x</skipped></testcase><testcase classname="tests.test_raw" name="test_sum_on_dist" time="0.5" /></testsuite></testsuites>"#;
    let c = parse_junit(xml).unwrap().counts();
    assert_eq!((c.passed, c.skipped), (1, 1));
    assert_eq!(c.skipped_at_collection, ["tests.test_win_tweaks"]);
    assert_eq!(c.skip_reasons.len(), 1);
    assert_eq!(c.skip_reasons[0].reason, "need .blo testdata");
}
