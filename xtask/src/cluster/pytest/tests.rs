use super::*;

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn named_test_paths_replace_the_suite() {
    let whole = pytest_command(&strings(&["-k", "raw", "-x"]));
    assert_eq!(whole[..4], strings(&["pytest", "tests/", "-m", "dist"])[..]);
    assert_eq!(whole[whole.len() - 3..], strings(&["-k", "raw", "-x"])[..]);
    let one = pytest_command(&strings(&["tests/test_ipython.py::test_sum_on_dist"]));
    assert_eq!(one[..3], strings(&["pytest", "-m", "dist"])[..]);
    assert_eq!(
        one.last().unwrap(),
        "tests/test_ipython.py::test_sum_on_dist"
    );
    // A path that is an option's value is not a test path.
    for args in [
        ["--deselect", "tests/test_ipython.py::test_sum_on_dist"],
        ["--ignore", "tests/io"],
    ] {
        let c = pytest_command(&strings(&args));
        assert_eq!(c[1], "tests/", "{args:?}");
    }
    let c = pytest_command(&strings(&["--ignore=tests/io", "-x", "tests/test_raw.py"]));
    assert!(!c.contains(&"tests/".to_string()), "{c:?}");
}

#[test]
fn the_junit_file_goes_to_the_results_before_the_users_arguments() {
    let c = with_results(&pytest_command(&strings(&["-x"])), "/runs/1/pytest");
    let junit = c
        .iter()
        .position(|a| a == "--junitxml=/runs/1/pytest/junit.xml");
    assert_eq!(junit, Some(c.len() - 2), "{c:?}");
    assert!(c.contains(&"cache_dir=/pytest-cache".to_string()), "{c:?}");
    assert!(!c.iter().any(|a| a.contains("no:cacheprovider")), "{c:?}");
}

#[test]
fn a_selection_replaces_the_suite() {
    let modules = strings(&["tests/io/test_a.py", "tests/test_b.py"]);
    let c = pytest_command_naming(&modules);
    assert_eq!(
        c[..4],
        strings(&["pytest", &modules[0], &modules[1], "-m"])[..]
    );
    assert_eq!(c.len(), pytest_command(&[]).len() + 1);
}

#[test]
fn the_harness_timeline_reads_with_each_tests_span() {
    let json = r#"{"started": 1.0, "collected": 2.0, "items": ["t::a"],
        "tests": [{"id": "t::a", "start": 3.0, "outcome": "passed", "end": 4.5},
                  {"id": "t::b", "start": 4.6, "outcome": "failed"}]}"#;
    let t: Timeline = serde_json::from_str(json).unwrap();
    assert_eq!(t.tests.len(), 2);
    assert_eq!(t.tests[0].end, Some(4.5));
    assert_eq!(
        (t.tests[1].end, t.tests[1].outcome.as_str()),
        (None, "failed")
    );
}

#[test]
fn a_pytest_ended_early_is_counted_from_its_timeline() {
    let json = r#"{"started": 1.0, "tests": [
        {"id": "tests/a.py::ok", "start": 3.0, "outcome": "passed", "end": 4.5},
        {"id": "tests/a.py::skip", "start": 4.5, "outcome": "skipped", "end": 4.6},
        {"id": "tests/b.py::stuck", "start": 4.6, "outcome": "failed", "end": 40.0,
         "verdict": "timed out",
         "failures": [{"when": "call", "longrepr": "future.result()\nE   TestTimedOut"}]}]}"#;
    let t: Timeline = serde_json::from_str(json).unwrap();
    assert_eq!(t.tests[2].failures[0].when, "call");
    let j = t.as_junit();
    let c = j.counts();
    assert_eq!((c.passed, c.failed, c.skipped, c.errors), (1, 1, 1, 0));
    assert_eq!(j.tests[0].secs, 1.5);
    assert_eq!(j.tests[2].file.as_deref(), Some("tests/b.py"));
    assert_eq!(j.failures[0].id, "tests/b.py::stuck");
    assert!(j.failures[0].message.starts_with("timed out"));
    assert!(j.failures[0].text.contains("TestTimedOut"));
    // The failures are read from the harness's file, never written in
    // the summary's timeline.
    assert!(!serde_json::to_string(&t.tests[2])
        .unwrap()
        .contains("longrepr"));
}

#[test]
fn where_pytest_time_went() {
    let t = Timeline {
        started: 100.0,
        collected: Some(106.5),
        ready: Some(106.5),
        finished: Some(126.5),
        items: vec![],
        tests: vec![],
    };
    // The cluster was ready at 104: it waited 2.5 s for the collection.
    let p = t.times(Some(104.0), "collected".into()).unwrap();
    assert_eq!((p.collect_s, p.waited_s, p.late_s), (6.5, 0.0, 2.5));
    assert_eq!(p.after_ready_s, Some(20.0));
    // Ready at 110: pytest waited 3.5 s.
    let t = Timeline {
        ready: Some(110.0),
        ..t
    };
    let p = t.times(Some(110.0), "collected".into()).unwrap();
    assert_eq!(
        (p.waited_s, p.late_s, p.after_ready_s),
        (3.5, 0.0, Some(16.5))
    );
    // No collection, no times.
    let t = Timeline {
        collected: None,
        ..t
    };
    assert_eq!(t.times(None, "collected".into()), None);
}
