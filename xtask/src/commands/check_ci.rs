//! `cargo xtask check-ci`: lint the GitHub Actions workflow with the pinned
//! zizmor, offline and without a config file, so that the verdict is the
//! same on every machine; any finding fails.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::cli::CheckCi;
use crate::context::Invocation;
use crate::downloads::{self, ZIZMOR_VERSION};
use crate::exec::{self, tail};
use crate::gha::limits;

/// The workflow this repository ships, relative to the checkout.
pub const WORKFLOW: &str = "ci/dist-tests.yml";

impl CheckCi {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let (sh, ui) = (&inv.sh, inv.ui);
        let ws = inv.workspace()?;
        // A path given on the command line is relative to the current
        // folder; the default, to the checkout (where `sh` is), so that
        // zizmor's report names it as the repository does.
        let (path, shown): (PathBuf, String) = match &self.workflow {
            Some(p) => (std::env::current_dir()?.join(p), p.display().to_string()),
            None => (PathBuf::from(WORKFLOW), WORKFLOW.to_string()),
        };
        if !inv.loc.root.join(&path).is_file() {
            bail!("{shown} is not a file: pass the workflow to lint with --workflow PATH");
        }
        // The steps that run the tests outlast the xtask's own deadlines.
        let text = std::fs::read_to_string(inv.loc.root.join(&path))
            .with_context(|| format!("reading {shown}"))?;
        let t = &ws.config.timeouts;
        let short = limits::short_steps(&text, limits::needed_minutes(t.ready_s, t.tests_s));
        if let Some(first) = short.first() {
            bail!(
                "{shown} {first}{}: raise it, so that on a hang the xtask, not the runner, ends the run",
                if short.len() > 1 { format!(" (and {} more)", short.len() - 1) } else { String::new() }
            );
        }
        let zizmor = downloads::zizmor(sh, &ws, ui).context("getting zizmor")?;
        let start = Instant::now();
        // RUST_BACKTRACE would add a backtrace to zizmor's own errors.
        let zizmor_cmd = cmd!(
            sh,
            "{zizmor} --offline --no-config --strict-collection --no-progress --color never {path}"
        )
        .env_remove("RUST_BACKTRACE");
        let out = exec::output(zizmor_cmd, exec::QUERY, ui).context("running zizmor")?;
        let report = String::from_utf8_lossy(&out.stdout);
        match out.status.code() {
            Some(0) => {
                ui.say(&format!(
                    "{shown}: no zizmor findings (zizmor {ZIZMOR_VERSION}, {:.1} s)",
                    start.elapsed().as_secs_f64()
                ));
                Ok(())
            }
            // 11..=14: findings, by their highest severity.
            Some(11..=14) => {
                print!("{report}");
                bail!("{}", verdict(&shown, &finding_ids(&report)))
            }
            _ => bail!(
                "zizmor could not lint {shown} ({}):\n{}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 10)
            ),
        }
    }
}

/// The audit of every finding in zizmor's plain report, in order: the
/// `unpinned-uses` of `error[unpinned-uses]: unpinned action reference`.
pub fn finding_ids(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|line| {
            let (level, rest) = line.split_once('[')?;
            let (id, rest) = rest.split_once(']')?;
            let level_ok = !level.is_empty() && level.chars().all(|c| c.is_ascii_lowercase());
            let id_ok = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            (level_ok && id_ok && rest.starts_with(':')).then(|| id.to_string())
        })
        .collect()
}

/// The one line `check-ci` fails with: how many findings, of which audits.
pub fn verdict(workflow: &str, ids: &[String]) -> String {
    let mut audits: Vec<(&str, usize)> = Vec::new();
    for id in ids {
        match audits.iter_mut().find(|(a, _)| a == id) {
            Some((_, n)) => *n += 1,
            None => audits.push((id, 1)),
        }
    }
    let named: Vec<String> = audits
        .iter()
        .map(|(a, n)| {
            if *n > 1 {
                format!("{a} x{n}")
            } else {
                a.to_string()
            }
        })
        .collect();
    let named = if named.is_empty() {
        "see zizmor's report above".to_string()
    } else {
        named.join(", ")
    };
    format!(
        "{workflow} has {} zizmor finding(s): {named}; fix them (zizmor's report is above, \
         each audit is explained at https://docs.zizmor.sh/audits/) and run `cargo xtask check-ci` again",
        ids.len().max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
error[unpinned-uses]: unpinned action reference
  --> bad.yml:62:15
   |
62 |         uses: actions/checkout@v4
   |               ^^^^^^^^^^^^^^^^^^^ action is not pinned to a hash (required by blanket policy)
   |
   = note: audit confidence → High
   = help: audit documentation → https://docs.zizmor.sh/audits/#unpinned-uses

warning[artipacked]: credential persistence through GitHub Actions artifacts
error[unpinned-uses]: unpinned action reference

3 findings (1 suppressed): 0 informational, 0 low, 1 medium, 2 high
";

    #[test]
    fn findings_from_the_plain_report() {
        assert_eq!(
            finding_ids(REPORT),
            ["unpinned-uses", "artipacked", "unpinned-uses"]
        );
        assert!(finding_ids("No findings to report. Good job! (1 suppressed)\n").is_empty());
    }

    #[test]
    fn the_verdict_is_one_line_naming_the_audits() {
        let v = verdict("ci/dist-tests.yml", &finding_ids(REPORT));
        assert!(
            v.starts_with(
                "ci/dist-tests.yml has 3 zizmor finding(s): unpinned-uses x2, artipacked; fix them"
            ),
            "{v}"
        );
        assert_eq!(v.lines().count(), 1);
        // zizmor said there were findings but the report could not be read.
        assert!(verdict("w.yml", &[]).starts_with("w.yml has 1 zizmor finding(s): see zizmor's"));
    }
}
