//! `cargo xtask history [TEST]`: each test's pass rate and median duration
//! over the checkout's last runs (target/dist-test/history.jsonl), its
//! trend as a line of bars, and a flag on a test whose latest median is
//! more than `--factor` times its median before. Exit code 1 when a test
//! is flagged, so that a CI step can fail on a slowdown.

use anyhow::{bail, Result};

use crate::cli::History;
use crate::context::Invocation;
use crate::history::{self, sparkline, trends};
use crate::run::ExitCode;

impl History {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        if self.factor.is_nan() || self.factor <= 1.0 {
            bail!(
                "--factor must be more than 1 (a slowdown), not {}",
                self.factor
            );
        }
        if self.min_seconds.is_nan() || self.min_seconds < 0.0 {
            bail!("--min-seconds must be 0 or more, not {}", self.min_seconds);
        }
        let ws = inv.workspace()?;
        let entries = history::read(&ws);
        if entries.is_empty() {
            bail!(
                "no run is recorded yet in {}: run `cargo xtask dist-test` (or `test`) first",
                history::path(&ws).display()
            );
        }
        let filter = self.test.as_deref().unwrap_or("");
        let trends = trends(&entries, filter, self.last as usize);
        if trends.is_empty() {
            bail!(
                "no test whose id contains {filter:?} in the last {} runs",
                self.last
            );
        }
        let shown = entries.len().min(self.last as usize);
        crate::outln!(
            "the last {shown} run(s) of {} recorded; median seconds per run, oldest first",
            entries.len()
        );
        let width = trends.iter().map(|t| t.id.len()).max().unwrap_or(4);
        let mut flagged = 0;
        for t in &trends {
            let medians: Vec<Option<f64>> = t.points.iter().map(|p| p.1).collect();
            let latest = medians.iter().rev().flatten().next().copied();
            let rate = t
                .pass_rate
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0));
            let flag = if t.flagged(self.factor, self.min_seconds) {
                flagged += 1;
                format!("  SLOWER x{:.1}", t.slowdown.unwrap_or(0.0))
            } else {
                String::new()
            };
            crate::outln!(
                "{:<width$}  {:>3} runs  pass {rate:>4}  latest {:>7}  {}{flag}",
                t.id,
                t.points.len(),
                latest.map_or("-".into(), |l| format!("{l:.2} s")),
                sparkline(&medians),
            );
        }
        if flagged > 0 {
            eprintln!(
                "{flagged} test(s) slower than {}x their median over the runs before, and by more than {} s",
                self.factor, self.min_seconds
            );
            return Err(ExitCode(1).into());
        }
        Ok(())
    }
}
