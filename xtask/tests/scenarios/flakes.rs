//! Flake hunting on a real cluster, with tests written for the check in a
//! copy of the pinned release:
//! - a seeded coin that fails 5 of its first 10 tosses (the toss count kept
//!   in the cluster's shared temp volume, so each pass tosses the next):
//!   `--repeat 10` calls it flaky at 50%, with its failures under one cause
//!   (their messages differ only in an address) and the services' log lines
//!   kept with each; `--until-failure` stops at its first failure (pass 2)
//!   with the cluster's logs kept;
//! - a test made slower on purpose after three runs on a kept cluster:
//!   `history` flags it.

use crate::common::*;

use std::fs;

const COIN: &str = r#"import os
import random

import pytest


@pytest.mark.dist
def test_seeded_coin():
    path = os.path.join(os.environ.get("TMP_TESTDATA_PATH", "/tmp"), "dist-test-coin-tosses")
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    # Seeded: tosses 0..9 come up .F...F.FFF (5 of 10 fail, the first at toss 1).
    if random.Random(20261204 + n).random() < 0.5:
        raise AssertionError(f"the seeded coin came up tails (worker tcp://10.0.0.{n + 2}:87{n:02d})")
"#;

const PACE: &str = r#"import time

import pytest

PAUSE_S = 0.2


@pytest.mark.dist
def test_paced():
    time.sleep(PAUSE_S)
"#;

#[test]
fn a_seeded_flaky_test_is_called_flaky_grouped_and_stopped_at() {
    if !engine_available() {
        return;
    }
    let copy = release_copy("flaky", true);
    fs::write(copy.join("tests/test_dist_test_coin.py"), COIN).unwrap();
    let project = copy.display().to_string();
    let only = "tests/test_dist_test_coin.py";

    let args = smallest_dist_test(&["--project", &project, "--repeat", "10", "--", only]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xtask(&args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a flaky test fails the run:\n{err}"
    );
    let s = summary(&err);
    assert_eq!(s.counts.passed + s.counts.failed, 10, "{err}");
    let coin = s
        .tests
        .iter()
        .find(|t| t.id.ends_with("test_seeded_coin"))
        .expect("the coin");
    assert_eq!(coin.verdict, xtask::repeats::Verdict::Flaky);
    let rate = coin.pass_rate.unwrap();
    assert!((0.2..=0.8).contains(&rate), "pass rate {rate}");
    assert!(err.contains("flaky"), "the table says it:\n{err}");
    assert_eq!(s.causes.len(), 1, "one cause: {:?}", s.causes);
    let cause = &s.causes[0];
    assert_eq!(cause.hits.len(), 5);
    assert!(
        cause.cause.contains("(worker <address>)"),
        "{}",
        cause.cause
    );
    let dir = run_dir(&err);
    for hit in &cause.hits {
        let logs = hit.logs.as_ref().expect("log lines kept with each failure");
        let text = fs::read_to_string(dir.join(logs)).unwrap();
        assert!(text.contains("==> scheduler <=="), "{logs}: {text}");
    }
    let junit = fs::read_to_string(dir.join("pytest/junit.xml")).unwrap();
    assert_eq!(
        junit.matches("<testsuite ").count(),
        10,
        "every repeat in the JUnit file"
    );

    let args = smallest_dist_test(&["--project", &project, "--until-failure", "--", only]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xtask(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--until-failure: repeat 2 failed"), "{err}");
    let s = summary(&err);
    assert_eq!(s.repeat.as_ref().map(|r| r.ran), Some(2));
    let logs = run_dir(&err).join("logs");
    assert!(
        logs.join("scheduler.log").is_file(),
        "the cluster's logs are kept"
    );
}

#[test]
fn history_flags_a_test_made_slower() {
    if !engine_available() {
        return;
    }
    let checkout = other_checkout("history-checkout");
    let _ = fs::remove_file(checkout.join("target/dist-test/history.jsonl"));
    let copy = release_copy("paced", true);
    let test = copy.join("tests/test_dist_test_pace.py");
    fs::write(&test, PACE).unwrap();
    let config = small_config();
    let config = config.to_str().unwrap();
    let project = copy.display().to_string();
    let up = [
        "--config",
        config,
        "up",
        "--workers",
        "1",
        "--engines",
        "1",
        "--project",
        &project,
    ];
    let _guard = CleanUpOnPanic {
        checkout: checkout.clone(),
        images: vec![],
        volumes: vec![],
    };
    let o = xtask_in(&checkout, &up, &[]);
    assert!(o.status.success(), "up: {}", stderr(&o));
    let only = ["test", "--", "tests/test_dist_test_pace.py"];
    for _ in 0..3 {
        let o = xtask_in(&checkout, &only, &[]);
        assert!(o.status.success(), "test: {}", stderr(&o));
    }
    let o = xtask_in(&checkout, &["history"], &[]);
    assert!(
        o.status.success(),
        "three even runs flag nothing: {}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("3 runs"), "{}", stdout(&o));
    fs::write(&test, PACE.replace("PAUSE_S = 0.2", "PAUSE_S = 2.0")).unwrap();
    let o = xtask_in(&checkout, &only, &[]);
    assert!(o.status.success(), "test: {}", stderr(&o));
    let o = xtask_in(&checkout, &["history", "test_paced"], &[]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a slowdown fails `history`:\n{out}"
    );
    let line = out
        .lines()
        .find(|l| l.contains("test_paced"))
        .expect("its line");
    assert!(line.contains("SLOWER") && line.contains("4 runs"), "{out}");
    let o = xtask_in(&checkout, &["down"], &[]);
    assert!(o.status.success(), "down: {}", stderr(&o));
}
