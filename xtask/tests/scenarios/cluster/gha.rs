//! On the kept cluster: a failing test's result on a GitHub Actions page,
//! and nowhere else.

use std::fs;

use crate::common::*;
use xtask::summary::Summary;

/// A failing test through `test`, as on GitHub Actions
/// (`GITHUB_ACTIONS=true`, `GITHUB_STEP_SUMMARY` set): the job summary is
/// appended to that file and stdout has one `::error` annotation per failed
/// or errored test. (Elsewhere nothing is written: the one gate,
/// `gha::step_summary_file`, is unit-tested.)
pub fn a_failing_test_fails_the_run(project: &str) {
    // test_sum_on_dist warns "Sending large graph"; as an error it fails.
    let failing = [
        "test",
        "--",
        "tests/io/datasets/test_raw.py::test_sum_on_dist",
        "-W",
        "error:Sending large graph:UserWarning",
    ];
    let file = std::env::temp_dir().join(format!("xtask-gha-summary-{}.md", std::process::id()));
    fs::write(&file, "an earlier step's summary\n").unwrap();
    let o = xtask_in(
        &root(),
        &failing,
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
    // The warning is raised while the test's fixture ships data to the
    // workers: pytest counts that as an error rather than a failure.
    let failed = s.counts.failed + s.counts.errors;
    assert_eq!(failed, 1, "{s:?}");
    assert_eq!(s.counts.passed, 0, "{s:?}");
    assert_eq!(s.exit_code, 1);
    assert_eq!(s.compose_project, project);
    assert!(s.dead_services.is_empty(), "{s:?}");
    github_actions_page(&s, &md, &out);
}

/// The job summary `md` (appended to what was there, with this run's
/// counts and failing test) and the annotations in `stdout`.
fn github_actions_page(s: &Summary, md: &str, stdout: &str) {
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
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("::error")).collect();
    assert_eq!(lines.len() as u64, c.failed + c.errors, "{stdout}");
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
