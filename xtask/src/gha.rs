//! A run's result on its GitHub Actions page: every failure as an
//! annotation on stdout, and a Markdown job summary appended to the file
//! `$GITHUB_STEP_SUMMARY` names. Outside GitHub Actions, nothing.
//!
//! Failures, files and lines come from pytest's JUnit XML ([`crate::junit`]);
//! the rest from the run's [`Summary`].

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::junit::JunitReport;
use crate::summary::Summary;

mod annotations;
pub mod limits;
mod markdown;
mod step_summary;

pub use annotations::{annotation, annotations, escape_data, escape_property};
pub use step_summary::{step_summary, StepSummary};

/// The job summary file, when running as a GitHub Actions step
/// (`GITHUB_ACTIONS=true` and `GITHUB_STEP_SUMMARY` set).
pub fn step_summary_file() -> Option<PathBuf> {
    step_summary_file_of(
        std::env::var("GITHUB_ACTIONS").ok().as_deref(),
        std::env::var_os("GITHUB_STEP_SUMMARY"),
    )
}

/// [`step_summary_file`] from the two variables' values: the one gate of
/// everything this module writes.
fn step_summary_file_of(actions: Option<&str>, file: Option<OsString>) -> Option<PathBuf> {
    if actions != Some("true") {
        return None;
    }
    file.filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// Under GitHub Actions, put the run's result on its page: one annotation
/// per failure on stdout, the job summary appended to its file. A summary
/// that cannot be written is a warning: the run's own result stands.
pub fn report(project: &str, summary: &Summary, junit: &JunitReport) {
    let Some(file) = step_summary_file() else {
        return;
    };
    let title = title(project);
    let s = StepSummary::of(&title, summary, junit);
    if let Err(e) = publish(&mut std::io::stdout().lock(), &file, &s) {
        eprintln!("warning: the GitHub Actions job summary: {e:#}");
    }
}

/// Write the annotations to `out` (stdout, where the runner reads them),
/// then append the job summary to `file`.
pub fn publish(out: &mut impl Write, file: &Path, s: &StepSummary) -> Result<()> {
    for line in annotations(s.failures) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    f.write_all(step_summary(s).as_bytes())
        .with_context(|| format!("appending to {}", file.display()))
}

/// `dist-test of libertem-0.16.0`: the folder of what was tested.
pub fn title(project: &str) -> String {
    let name = Path::new(project)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| project.to_string());
    format!("dist-test of {name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::tests::sample;
    use crate::phases::Phases;

    #[test]
    fn only_under_github_actions_with_a_summary_file() {
        let f = || Some(OsString::from("/tmp/summary.md"));
        assert_eq!(
            step_summary_file_of(Some("true"), f()),
            Some(PathBuf::from("/tmp/summary.md"))
        );
        // Elsewhere nothing is written, annotations included.
        assert_eq!(step_summary_file_of(None, f()), None);
        assert_eq!(step_summary_file_of(Some("false"), f()), None);
        assert_eq!(step_summary_file_of(Some("true"), None), None);
        assert_eq!(
            step_summary_file_of(Some("true"), Some(OsString::new())),
            None
        );
    }

    #[test]
    fn titles_name_the_folder() {
        assert_eq!(
            title("/w/target/dist-test/sdist/libertem-0.16.0"),
            "dist-test of libertem-0.16.0"
        );
        assert_eq!(title("../LiberTEM"), "dist-test of LiberTEM");
        assert_eq!(
            title("the running cluster"),
            "dist-test of the running cluster"
        );
    }

    #[test]
    fn the_summary_is_appended() {
        let file = std::env::temp_dir().join(format!("xtask-gha-{}.md", std::process::id()));
        std::fs::write(&file, "earlier step\n").unwrap();
        let r = sample();
        let (counts, phases) = (r.counts(), Phases::default());
        let s = StepSummary {
            title: "t",
            exit_code: 1,
            counts: &counts,
            phases: &phases,
            tests: &r.tests,
            failures: &r.failures,
            dead_services: &[],
            error: None,
            verdict: None,
        };
        let mut out = Vec::new();
        publish(&mut out, &file, &s).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(text.starts_with("earlier step\n## t: ❌ failed"), "{text}");
        assert!(text.contains("| 3 | 2 | 1 | 1 |"), "{text}");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out
            .lines()
            .all(|l| l.starts_with("::error file=tests/test_sample.py,line=")));
    }
}
