//! A failing run's result on its GitHub Actions page: with
//! `GITHUB_ACTIONS=true` and `GITHUB_STEP_SUMMARY` set, the job summary is
//! appended to that file and stdout has one `::error` annotation per failed
//! or errored test; without them, neither. Each run is on the smallest
//! cluster and checked against its own summary.json, so the two run side by
//! side.

mod common;
use common::*;

use std::fs;

/// test_sum_on_dist warns "Sending large graph"; as an error it fails (in
/// its fixture: pytest counts an error).
const FAILING: [&str; 10] = [
    "dist-test",
    "--workers",
    "1",
    "--engines",
    "1",
    "--",
    "-k",
    "test_raw.py and test_sum_on_dist",
    "-W",
    "error:Sending large graph:UserWarning",
];

fn annotations(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.contains("::error")).collect()
}

#[test]
fn under_github_actions_the_summary_and_one_annotation_per_failure() {
    let Some(_shared) = docker_shared() else {
        return;
    };
    let file = std::env::temp_dir().join(format!("xtask-gha-summary-{}.md", std::process::id()));
    fs::write(&file, "an earlier step's summary\n").unwrap();
    let o = xtask_in(
        &root(),
        &FAILING,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", file.to_str().unwrap()),
        ],
    );
    let (err, out) = (stderr(&o), stdout(&o));
    let md = fs::read_to_string(&file).unwrap();
    let _ = fs::remove_file(&file);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let s = summary(&err);
    let failed = s.counts.failed + s.counts.errors;
    assert_eq!(failed, 1, "{s:?}");
    assert_eq!(s.counts.passed, 0, "{s:?}");

    // Appended to what was there, with this run's counts and failing test.
    assert!(
        md.starts_with("an earlier step's summary\n## dist-test of "),
        "{md}"
    );
    assert!(md.contains(": ❌ failed (exit code 1)\n"), "{md}");
    let c = &s.counts;
    let row = format!(
        "| {} | {} | {} | {} |\n",
        c.passed, c.failed, c.errors, c.skipped
    );
    assert!(md.contains(&row), "{row:?} not in\n{md}");
    assert!(md.contains("test_raw.py::test_sum_on_dist"), "{md}");
    // pytest's reason, and the end of the traceback: the warning raised.
    assert!(
        md.contains("> failed on setup with \"UserWarning: Sending large graph"),
        "{md}"
    );
    assert!(
        md.contains("E               UserWarning: Sending large graph"),
        "{md}"
    );

    // One annotation per failure, on a file of the project's tests.
    let lines = annotations(&out);
    assert_eq!(lines.len() as u64, failed, "{out}");
    for line in &lines {
        assert!(line.starts_with("::error file=tests/"), "{line}");
        assert!(line.contains("test_raw.py,line="), "{line}");
        assert!(line.contains("test_sum_on_dist"), "{line}");
    }

    // summary.json has pytest's own time and the slowest tests.
    assert!(s.pytest_s.is_some_and(|t| t > 0.0), "{s:?}");
    assert!(
        s.slowest
            .iter()
            .any(|t| t.id.ends_with("test_raw.py::test_sum_on_dist")),
        "{s:?}"
    );
}

#[test]
fn elsewhere_no_annotations() {
    let Some(_shared) = docker_shared() else {
        return;
    };
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(FAILING)
        .current_dir(root())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    let o = c.output().expect("running the xtask binary");
    let (err, out) = (stderr(&o), stdout(&o));
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The same failure as above, and yet not a single annotation.
    let s = summary(&err);
    assert_eq!(s.counts.failed + s.counts.errors, 1, "{s:?}");
    assert!(annotations(&out).is_empty(), "{out}");
    assert!(!err.contains("::error"), "{err}");
}
