//! How a run ends: its JUnit results (the passes' merged), its selection
//! remembered, its exit code decided, `summary.json` written, its last
//! lines printed (the report's path the last).

use std::fs;

use anyhow::{Context, Result};

use super::environment::commit_of;
use super::{ExitCode, Run};
use crate::checkout;
use crate::cluster::pytest::Timeline;
use crate::cluster::readiness::NotReady;
use crate::docker::Docker;
use crate::gha;
use crate::interrupt;
use crate::junit::JunitReport;
use crate::outcome::{decide, Environment, Facts, RunVerdict};
use crate::selection::Settled;
use crate::summary::{Summary, SCHEMA};
use crate::workspace::Workspace;

impl Run {
    /// Write summary.json, print the result, and turn it into the exit code.
    pub fn conclude(
        mut self,
        ws: &Workspace,
        docker: &Docker,
        (project, cluster): (&str, &str),
        outcome: Result<()>,
    ) -> Result<()> {
        // A pass whose pytest ended but that was not ended itself (a signal
        // or an error right after it) still counts.
        let unended = self.passes.len() < self.pass as usize;
        if self.plan.repeats() && unended && self.results.join("junit.xml").is_file() {
            let _ = self.end_pass();
        }
        if self.plan.repeats() {
            if let Err(e) = self.merge_junit() {
                eprintln!("warning: {e:#}");
            }
        }
        let (junit, said) = super::junit_in(&self.results, "");
        if let Some(line) = said {
            eprintln!("{line}");
        }
        let timeline = match self.passes.last() {
            Some(p) => p.timeline.clone(),
            None => Timeline::read(&self.results),
        };
        let mismatch = self.settle_selection(ws, docker, timeline.as_ref());
        let pytest_code = if self.passes.is_empty() {
            self.pytest_code
        } else {
            self.passes_code()
        };
        let (mut verdict, mut code) = self.verdict(&outcome, timeline.as_ref(), pytest_code);
        if mismatch.is_some() && code == 0 {
            (verdict, code) = (RunVerdict::Error, 1);
        }
        let error = match (&outcome, &mismatch) {
            (Err(e), _) => Some(format!("{e:#}")),
            (Ok(()), Some(m)) => Some(m.clone()),
            (Ok(()), None) => None,
        };
        let mut summary =
            self.summary((project, cluster), &junit, timeline.as_ref(), (code, error));
        summary.verdict = Some(verdict);
        summary.environment = Some(self.environment_of(ws, docker, project));
        let report = self.record(ws, docker, &mut summary);
        let path = self.dir.join("summary.json");
        fs::write(&path, summary.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        self.report(&summary);
        gha::report(project, &summary, &junit);
        if let Err(e) = outcome {
            eprintln!("error: {e:#}");
        }
        if let Some(m) = mismatch {
            eprintln!("error: {m}");
        }
        if let Some(report) = report {
            eprintln!("report: {}", report.display());
        }
        if code != 0 {
            return Err(ExitCode(code).into());
        }
        Ok(())
    }

    /// The run's verdict and exit code (see [`decide`]).
    fn verdict(
        &self,
        outcome: &Result<()>,
        timeline: Option<&Timeline>,
        pytest: Option<i32>,
    ) -> (RunVerdict, i32) {
        let not_ready = outcome
            .as_ref()
            .err()
            .is_some_and(|e| e.chain().any(|c| c.is::<NotReady>()));
        // From every pass's timeline: a test past its deadline that then
        // passed is no timeout.
        let timed_out = |t: &Timeline| {
            t.tests
                .iter()
                .any(|t| t.verdict.as_deref() == Some("timed out"))
        };
        let test_timed_out = timeline.is_some_and(timed_out)
            || self
                .passes
                .iter()
                .any(|p| p.timeline.as_ref().is_some_and(timed_out));
        let c = &self.collected;
        decide(Facts {
            interrupted: interrupt::interrupted(),
            pytest,
            outcome_ok: outcome.is_ok(),
            infrastructure: !c.dead.is_empty() || !c.dead_nodes.is_empty() || not_ready,
            suite_timed_out: self.suite_timed_out,
            test_timed_out,
        })
    }

    /// What the run's selection says, remembered under the checkout lock;
    /// `Some` when pytest selected other tests than the run named.
    fn settle_selection(
        &self,
        ws: &Workspace,
        docker: &Docker,
        timeline: Option<&Timeline>,
    ) -> Option<String> {
        let choice = self.selection.as_ref()?;
        let items = timeline.map(|t| t.items.as_slice());
        let _lock = match checkout::lock(ws, docker, "remembering the selection", self.wait) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warning: the selection is not remembered: {e:#}");
                return None;
            }
        };
        match choice.settle(&self.id, items, self.pytest_code) {
            Settled::Quiet => None,
            Settled::Warning(w) => {
                eprintln!("{w}");
                None
            }
            Settled::Mismatch(m) => Some(m),
        }
    }

    /// `summary.json` of the run of `project` on `cluster`, ended with
    /// `exit_code` and `error`.
    fn summary(
        &self,
        (project, cluster): (&str, &str),
        junit: &JunitReport,
        timeline: Option<&Timeline>,
        (exit_code, error): (i32, Option<String>),
    ) -> Summary {
        let pytest = timeline.and_then(|t| {
            let how = match self.selection.as_ref().and_then(|c| c.named.as_ref()) {
                Some(r) => format!("named from run {}", r.run_id),
                None => "collected".to_string(),
            };
            t.times(self.declared_ready, how)
        });
        Summary {
            schema: SCHEMA,
            run_id: self.id.clone(),
            project: project.to_string(),
            compose_project: cluster.to_string(),
            nodes: self.collected.nodes.clone(),
            dead_nodes: self.collected.dead_nodes.clone(),
            counts: junit.counts(),
            pytest_s: junit.secs,
            pytest,
            slowest: junit.slow_tests(10),
            exit_code,
            phases: self.phases.clone(),
            dead_services: self.collected.dead.clone(),
            error,
            data: self.data.clone(),
            image: self.image.clone(),
            python: self.python.clone(),
            repeat: None,
            tests: Vec::new(),
            causes: Vec::new(),
            timeline: None,
            report: None,
            verdict: None,
            snapshots: self.snapshots.clone(),
            containers: self.collected.containers.clone(),
            environment: None,
        }
    }

    /// What the run ran on: the versions read while the cluster ran, the
    /// commits of the project and of this checkout, the engine.
    fn environment_of(&self, ws: &Workspace, docker: &Docker, project: &str) -> Environment {
        let ui = docker.ui();
        let (project_commit, project_dirty) = commit_of(std::path::Path::new(project), ui);
        let (harness_commit, harness_dirty) = commit_of(&ws.root, ui);
        Environment {
            versions: self.environment.versions.clone(),
            project_commit,
            project_dirty,
            harness_commit,
            harness_dirty,
            engine: docker.server_version(),
        }
    }

    /// The run's last lines.
    fn report(&self, s: &Summary) {
        for d in &s.dead_services {
            eprintln!(
                "error: service {} died during the run ({}); last lines:\n{}",
                d.service,
                d.details(),
                d.last_lines
            );
        }
        for snap in &s.snapshots {
            let what = snap.test.as_deref().unwrap_or("the suite");
            eprintln!(
                "timed out: {what}; every process's stacks and the cluster's state in {}",
                self.dir.join(&snap.dir).display()
            );
        }
        let line: Vec<String> = s
            .phases
            .0
            .iter()
            .map(|(n, secs)| format!("{n} {secs:.1}s"))
            .collect();
        eprintln!("phases: {}", line.join(", "));
        if let Some(p) = &s.pytest {
            eprintln!("pytest: {}", p.describe());
        }
        let c = &s.counts;
        let verdict = s.verdict.map_or("", |v| v.word());
        eprintln!(
            "result: {} passed, {} failed, {} skipped, {} errors; exit code {} ({verdict})",
            c.passed, c.failed, c.skipped, c.errors, s.exit_code
        );
        for m in &c.skipped_at_collection {
            eprintln!("  not a dist test: {m}, skipped by pytest while collecting");
        }
        for r in &c.skip_reasons {
            eprintln!("  skipped {}x: {}", r.count, r.reason);
        }
        eprintln!("results and logs: {}", self.dir.display());
    }
}
