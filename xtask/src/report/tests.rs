use super::*;
use crate::cluster::pytest::TestSpan;
use crate::cluster::spec::ServiceSpan;
use crate::history::TestLine;
use crate::phases::{Phases, Span};
use crate::repeats::causes::{Cause, Hit};
use crate::repeats::{TestResult, Verdict};
use crate::summary::{PassSpan, RunTimeline};

fn summary() -> Summary {
    let json = r#"{"schema": 2, "run_id": "r3", "project": "/p", "compose_project": "c",
        "passed": 3, "failed": 1, "skipped": 0, "errors": 0, "skip_reasons": [],
        "slowest": [], "exit_code": 1, "phases": {"up_s": 2.0}, "dead_services": [], "error": null}"#;
    let mut s = Summary::from_json(json).unwrap();
    s.phases = Phases::of(vec![("up".into(), 2.0)]);
    let span = |id: &str, repeat, start: f64, outcome: &str| PassSpan {
        repeat,
        test: TestSpan {
            id: id.into(),
            start,
            end: Some(start + 1.0),
            outcome: outcome.into(),
            ..TestSpan::default()
        },
    };
    s.timeline = Some(RunTimeline {
        started: 100.0,
        phases: vec![Span {
            name: "up".into(),
            start: 100.0,
            end: 102.0,
        }],
        services: vec![
            ServiceSpan {
                service: "scheduler".into(),
                running: Some(101.0),
                ready: Some(103.0),
            },
            ServiceSpan {
                service: "worker-1".into(),
                running: Some(101.5),
                ready: Some(105.0),
            },
        ],
        pytest: vec![crate::summary::PytestSpan {
            repeat: 1,
            started: 102.0,
            collected: Some(104.0),
            ready: Some(105.0),
            finished: Some(112.0),
        }],
        tests: vec![
            span("tests/a.py::test_x", 1, 106.0, "passed"),
            span("tests/a.py::test_y<1>", 1, 107.0, "failed"),
            span("tests/a.py::test_x", 2, 109.0, "passed"),
            span("tests/a.py::test_y<1>", 2, 110.0, "passed"),
        ],
    });
    let t = |id: &str, passed, failed, verdict| TestResult {
        id: id.into(),
        runs: 2,
        passed,
        failed,
        errors: 0,
        skipped: 0,
        pass_rate: Some(f64::from(passed) / 2.0),
        min_s: 1.0,
        median_s: 1.0,
        max_s: 1.0,
        verdict,
        timed_out: 0,
        infrastructure: 0,
        failure: None,
    };
    s.tests = vec![
        t("tests/a.py::test_x", 2, 0, Verdict::Passed),
        t("tests/a.py::test_y<1>", 1, 1, Verdict::Flaky),
    ];
    s.causes = vec![Cause {
        cause: "AssertionError: <tails>".into(),
        example: "AssertionError: <tails>".into(),
        hits: vec![Hit {
            id: "tests/a.py::test_y<1>".into(),
            repeat: 1,
            logs: None,
        }],
    }];
    s
}

fn history() -> Vec<Entry> {
    (1..=3)
        .map(|i| Entry {
            schema: crate::history::SCHEMA,
            run_id: format!("r{i}"),
            finished: 0.0,
            command: "dist-test".into(),
            project: "/p".into(),
            python: None,
            repeats: 1,
            exit_code: 0,
            tests: vec![TestLine {
                id: "tests/a.py::test_x".into(),
                runs: 1,
                passed: 1,
                failed: 0,
                median_s: Some(f64::from(i)),
            }],
        })
        .collect()
}

#[test]
fn the_page_shows_every_service_and_test_and_a_point_per_run() {
    let html = page(&summary(), &history(), Path::new("/nonexistent"));
    for lane in [
        "phases",
        "service:scheduler",
        "service:worker-1",
        "test:tests/a.py::test_x",
    ] {
        assert!(html.contains(&format!("data-lane=\"{lane}\"")), "{lane}");
    }
    // Escaped, never raw markup from a test id or a message.
    assert!(html.contains("test:tests/a.py::test_y&lt;1&gt;"));
    assert!(!html.contains("<tails>") && html.contains("&lt;tails&gt;"));
    assert!(
        html.contains("data-points=\"3\""),
        "one point per run in the history"
    );
    assert!(html.contains("verdict-flaky"));
    assert!(
        !html.contains("<link") && !html.contains("src=\"http"),
        "self-contained"
    );
}

#[test]
fn a_timed_out_test_shows_its_verdict_traceback_stacks_and_the_environment() {
    let mut s = summary();
    s.verdict = Some(crate::outcome::RunVerdict::TimedOut);
    s.tests[1].verdict = Verdict::TimedOut;
    s.tests[1].failure = Some(crate::repeats::TestFailure {
        repeat: 1,
        phases: vec![crate::cluster::pytest::Failure {
            when: "call".into(),
            longrepr: "future.result() <waits>".into(),
            stdout: "printed".into(),
            ..Default::default()
        }],
        bundle: Some("failures/test_y-1-repeat-1.txt".into()),
    });
    s.snapshots = vec![crate::outcome::Snapshot {
        test: Some("tests/a.py::test_y<1>".into()),
        at: 0.0,
        dir: "timeouts/1-1".into(),
        stacks: vec!["timeouts/1-1/stacks/worker-1.txt".into()],
        dask: Some("timeouts/1-1/dask-cluster-state.yaml".into()),
        engines: None,
        usable: true,
        why: None,
    }];
    s.environment = Some(crate::outcome::Environment {
        versions: [("dask".to_string(), "2026.8.0".to_string())].into(),
        ..Default::default()
    });
    let html = page(&s, &[], Path::new("/nonexistent"));
    assert!(html.contains("timed out: 3 passed"), "the verdict first");
    assert!(html.contains("href=\"timeouts/1-1/stacks/worker-1.txt\">worker-1</a>"));
    assert!(html.contains("href=\"timeouts/1-1/dask-cluster-state.yaml\">Dask cluster dump"));
    assert!(
        html.contains("future.result() &lt;waits&gt;"),
        "the traceback, escaped"
    );
    assert!(html.contains("captured stdout"));
    assert!(html.contains("href=\"failures/test_y-1-repeat-1.txt\">bundle"));
    assert!(html.contains("<th>dask</th><td>2026.8.0</td>"));
    // One button per verdict present, rows carry theirs.
    assert!(html.contains("<button data-verdict=\"timed out\""));
    assert!(html.contains("data-verdict=\"timed out\"><td>tests/a.py::test_y&lt;1&gt;"));
    assert!(html.contains("verdict-timed-out"));
}
