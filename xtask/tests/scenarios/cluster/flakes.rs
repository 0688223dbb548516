//! Flake hunting on the kept cluster, with tests written for the check into
//! its copy of the pinned release:
//! - a seeded coin that fails 2 of its first 4 tosses (the toss count kept
//!   in the run's results folder, so each pass of a run tosses the next and
//!   every run starts again): `--repeat 4` calls it flaky, with its failures
//!   under one cause (their messages differ only in an address) and the
//!   services' log lines kept with each; `--until-failure` stops at its
//!   first failure (pass 2) with the cluster's logs kept;
//! - a test made slower on purpose after two runs: `history` flags it.
//!   Its name is this test run's own, so that the checkout's history of
//!   earlier runs does not count.

use crate::common::*;

use std::fs;
use std::path::Path;

const COIN: &str = r#"import os
import random

import pytest


@pytest.mark.dist
def test_seeded_coin():
    # The run's results folder: each pass of one run tosses the next.
    folder = os.path.dirname(os.environ["DIST_TEST_TIMELINE"])
    path = os.path.join(folder, "dist-test-coin-tosses")
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    # Seeded: tosses 0..3 come up .F.F (2 of 4 fail, the first at toss 1).
    if random.Random(20261208 + n).random() < 0.5:
        raise AssertionError(f"the seeded coin came up tails (worker tcp://10.0.0.{n + 2}:87{n:02d})")
"#;

const COIN_MODULE: &str = "tests/test_dist_test_coin.py";
const PACE_MODULE: &str = "tests/test_dist_test_pace.py";

/// A test that sleeps `pause` seconds, named for this test run.
fn pace(pause: &str) -> String {
    format!(
        "import time\n\nimport pytest\n\n\n@pytest.mark.dist\ndef {}():\n    time.sleep({pause})\n",
        paced_name()
    )
}

fn paced_name() -> String {
    format!("test_paced_{}", std::process::id())
}

/// Write the coin and the paced test into the kept cluster's project.
pub fn add_tests(copy: &Path) {
    fs::write(copy.join(COIN_MODULE), COIN).unwrap();
    fs::write(copy.join(PACE_MODULE), pace("0.2")).unwrap();
}

pub fn a_seeded_flaky_test_is_called_flaky_and_stopped_at() {
    let o = xtask(&["test", "--repeat", "4", "--", COIN_MODULE]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a flaky test fails the run:\n{err}"
    );
    let s = summary(&err);
    assert_eq!(s.counts.passed + s.counts.failed, 4, "{err}");
    let coin = s
        .tests
        .iter()
        .find(|t| t.id.ends_with("test_seeded_coin"))
        .expect("the coin");
    assert_eq!(coin.verdict, xtask::repeats::Verdict::Flaky);
    let rate = coin.pass_rate.unwrap();
    assert!((0.45..0.55).contains(&rate), "pass rate {rate}");
    assert!(err.contains("flaky"), "the table says it:\n{err}");
    assert_eq!(s.causes.len(), 1, "one cause: {:?}", s.causes);
    let cause = &s.causes[0];
    assert_eq!(cause.hits.len(), 2);
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
        4,
        "every repeat in the JUnit file"
    );

    let o = xtask(&["test", "--until-failure", "--", COIN_MODULE]);
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

pub fn history_flags_a_test_made_slower(copy: &Path) {
    let name = paced_name();
    let only = ["test", "--", PACE_MODULE];
    for _ in 0..2 {
        let o = xtask(&only);
        assert!(o.status.success(), "test: {}", stderr(&o));
    }
    let o = xtask(&["history", &name, "--last", "100"]);
    let out = stdout(&o);
    assert!(o.status.success(), "two even runs flag nothing: {out}");
    let line = out.lines().find(|l| l.contains(&name)).expect("its line");
    assert!(line.contains("2 runs"), "{out}");
    fs::write(copy.join(PACE_MODULE), pace("2.0")).unwrap();
    let o = xtask(&only);
    assert!(o.status.success(), "test: {}", stderr(&o));
    let o = xtask(&["history", &name, "--last", "100"]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a slowdown fails `history`:\n{out}"
    );
    let line = out.lines().find(|l| l.contains(&name)).expect("its line");
    assert!(line.contains("SLOWER") && line.contains("3 runs"), "{out}");
}
