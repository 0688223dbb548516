//! One run of the tests, as `dist-test` and `test` do it, on either
//! backend: its folder under `target/dist-test/runs/` (registered as in
//! progress while it lives), its phases, its tests, and how it ends — logs
//! always kept, `summary.json` written, the exit code decided here. A run
//! may pass its selection several times (`--repeat`, see [`repeat`]); what
//! it records besides (the per-test table, causes, history, report.html)
//! is [`record`]'s.

mod bundle;
mod conclude;
pub mod environment;
pub mod record;
pub mod repeat;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::checkout::runs;
use crate::cluster::pytest::{pytest_command, pytest_command_naming};
use crate::cluster::readiness::declare_ready;
use crate::cluster::spec::{Collected, ServiceSpan, TestLimits, DEADLINES_DIR};
use crate::cluster::{Cluster, Tests};
use crate::interrupt;
use crate::phases::Phases;
use crate::selection::{self, Choice};
use crate::testdata::TestData;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// The exit code a command wants, after it has reported everything itself.
#[derive(Debug)]
pub struct ExitCode(pub i32);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitCode {}

pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    /// Mounted at `/results` in the tests container.
    pub results: PathBuf,
    pub phases: Phases,
    /// The detector data the run mounted, for `summary.json`.
    pub data: Option<TestData>,
    /// The image's tag, for `summary.json`.
    pub image: Option<String>,
    /// The Python the cluster runs, for `summary.json`.
    pub python: Option<String>,
    pub pytest_code: Option<i32>,
    /// Which tests pytest was told to run (see selection.rs); `None` when
    /// the user's arguments chose them.
    pub selection: Option<Choice>,
    /// When the cluster was declared ready (Unix time).
    pub declared_ready: Option<f64>,
    /// What the cluster left when the run ended.
    pub collected: Collected,
    /// This run, in progress, for the other commands of the checkout.
    pub registration: runs::Registration,
    /// How many passes, on how many clusters.
    pub plan: repeat::Plan,
    /// What each pass of pytest left, in order.
    pub passes: Vec<repeat::Pass>,
    /// When each service came up and was ready, per cluster started.
    pub services: Vec<ServiceSpan>,
    /// When the run began (Unix seconds).
    pub started: f64,
    /// The pass under way, from 1.
    pub pass: u32,
    /// The deadlines the harness keeps in the tests container.
    pub limits: TestLimits,
    /// What was kept of the cluster at each deadline passed.
    pub snapshots: Vec<snapshot::Snapshot>,
    /// Whether the suite's deadline ended pytest.
    pub suite_timed_out: bool,
    /// What the run ran on.
    pub environment: crate::outcome::Environment,
    ui: Ui,
    /// Wait for the checkout lock when another command holds it.
    wait: bool,
}

impl Run {
    pub fn new(ws: &Workspace, ui: Ui, wait: bool) -> Result<Run> {
        let id = new_run_id();
        let dir = runs::new_run_dir(&ws.target, &id)?;
        let results = results_dir(&dir)?;
        let registration = runs::Registration::new(ws, &id)?;
        Ok(Run {
            id,
            dir,
            results,
            phases: Phases::default(),
            data: None,
            image: None,
            python: None,
            pytest_code: None,
            selection: None,
            declared_ready: None,
            collected: Collected::default(),
            registration,
            plan: repeat::Plan::default(),
            passes: Vec::new(),
            services: Vec::new(),
            started: crate::clock::unix_now(),
            pass: 1,
            limits: TestLimits::of(&ws.config.timeouts, None),
            snapshots: Vec::new(),
            suite_timed_out: false,
            environment: crate::outcome::Environment::default(),
            ui,
            wait,
        })
    }

    /// Start pytest in the tests container: it starts and collects while
    /// the cluster gets ready, and runs no test before [`Run::tests`].
    /// Without arguments of the user's, it names the remembered selection
    /// when nothing it was made from has changed (selection.rs).
    pub fn start_tests<'c>(
        &mut self,
        ws: &Workspace,
        cluster: &'c dyn Cluster,
        pytest_args: &[String],
    ) -> Result<Box<dyn Tests + 'c>> {
        let mut command = pytest_command(pytest_args);
        if pytest_args.is_empty() {
            // Only a shortcut: a key that cannot be made means collecting.
            match selection_key(ws, cluster, &command) {
                Ok(key) => {
                    let choice = Choice::recall(ws, key);
                    if let Some(r) = &choice.named {
                        let modules = r.modules();
                        command = pytest_command_naming(&modules);
                        self.ui.say(&format!(
                            "selection: naming the {} modules of the {} dist tests run {} \
                             collected (nothing they were collected from has changed)",
                            modules.len(),
                            r.items.len(),
                            r.run_id
                        ));
                    }
                    self.selection = Some(choice);
                }
                Err(e) => eprintln!("warning: collecting the whole suite: {e:#}"),
            }
        }
        cluster.start_tests(&command, &self.limits, &self.dir.join("pytest.log"))
    }

    /// The cluster is ready: let pytest run, timed as the `tests` phase,
    /// and keep its exit code. Meanwhile, each test that passes its deadline
    /// gets a snapshot of the cluster when the harness asks for one; at the
    /// suite's deadline one is taken too, then pytest is stopped. A timeout
    /// or a signal is an error.
    pub fn tests(
        &mut self,
        ws: &Workspace,
        cluster: &dyn Cluster,
        tests: Box<dyn Tests + '_>,
    ) -> Result<()> {
        let limit = Duration::from_secs(ws.config.timeouts.tests_s);
        let results = self.results.clone();
        let requests = results.join(DEADLINES_DIR);
        let (dir, ui) = (self.dir.clone(), self.ui);
        let mut declared = None;
        let mut suite_timed_out = false;
        let snapshots = &mut self.snapshots;
        let pass = self.pass;
        let phase = if self.pass <= 1 {
            "tests".to_string()
        } else {
            format!("tests_{}", self.pass)
        };
        let code = self.phases.time_streaming(&phase, ui, || {
            declare_ready(&results)?;
            declared = Some(crate::clock::unix_now());
            let suite = Instant::now() + limit;
            // Answered once each, even when the answer could not be written.
            let mut handled = std::collections::BTreeSet::new();
            let mut tick = || -> Result<bool> {
                for (stem, test) in snapshot::requests(&requests) {
                    if !handled.insert(stem.clone()) {
                        continue;
                    }
                    let n = snapshots.len() + 1;
                    let rel = match pass {
                        1 => format!("timeouts/{n}-{}", record::slug(&test)),
                        k => format!("timeouts/pass-{k}-{n}-{}", record::slug(&test)),
                    };
                    ui.say(&format!(
                        "\n{test} passed its deadline: keeping every process's stacks in {rel}"
                    ));
                    let s = snapshot::take(cluster, &dir, &rel, Some(test));
                    snapshot::answer(&requests, &stem, &s);
                    snapshots.push(s);
                }
                if Instant::now() < suite {
                    return Ok(false);
                }
                ui.say(&format!(
                    "the tests passed the suite's deadline ({} s): keeping every process's \
                     stacks, then stopping pytest",
                    limit.as_secs()
                ));
                let rel = format!("timeouts/suite-{}", snapshots.len() + 1);
                snapshots.push(snapshot::take(cluster, &dir, &rel, None));
                suite_timed_out = true;
                Ok(true)
            };
            // The deadline is only a backstop: `tick` stops pytest first.
            let backstop = suite + snapshot::LIMIT * 2;
            tests.finish(ui, backstop, &mut tick)
        })?;
        self.declared_ready = declared;
        self.pytest_code = code;
        self.suite_timed_out |= suite_timed_out;
        match code {
            None => bail!(
                "the tests did not finish within {} s (timeouts.tests_s)",
                limit.as_secs()
            ),
            Some(_) => interrupt::check(),
        }
    }

    /// Every service's log, and what died (on a fresh cluster per pass,
    /// into that pass's folder; what died on each is kept).
    pub fn collect(&mut self, cluster: &dyn Cluster, outcome: &Result<()>) {
        let failed = outcome.is_err() || self.pytest_code != Some(0);
        let logs = if self.plan.fresh && self.plan.repeats() {
            repeat::repeat_dir(&self.dir, self.pass).join("logs")
        } else {
            self.dir.join("logs")
        };
        if self.environment.versions.is_empty() {
            self.environment.versions = environment::versions_of(cluster, self.ui);
        }
        let pass = self.pass;
        let mut collected = cluster.collect(&logs, failed);
        for d in &mut collected.dead {
            d.pass.get_or_insert(pass);
        }
        let mut dead = std::mem::take(&mut self.collected.dead);
        dead.append(&mut collected.dead);
        collected.dead = dead;
        self.collected = collected;
    }

    /// The name of a phase of the current pass: `tests`, then `tests_2`, …
    pub fn phase(&self, name: &str) -> String {
        if self.pass <= 1 {
            name.to_string()
        } else {
            format!("{name}_{}", self.pass)
        }
    }
}

/// The key of what the tests container's pytest collects from (see
/// selection.rs): the image the cluster runs, its mounts, its shape, the
/// command.
fn selection_key(ws: &Workspace, cluster: &dyn Cluster, command: &[String]) -> Result<String> {
    let def = cluster.definition();
    let backend = cluster.backend().kind().word();
    let s = def.size;
    let shape = format!("{}x{}x{} {backend}", s.workers, s.engines, s.worker_cpus);
    selection::Inputs {
        image_id: &def.image.id,
        source: &def.mounts.source,
        data: &def.mounts.data,
        docker_dir: &ws.docker_dir(),
        command,
        shape: &shape,
    }
    .key()
}

/// What pytest left in `dir`: its JUnit XML, or when it wrote none (it was
/// ended), what the harness's timeline says; with a line saying which
/// (`label` names the pass), for the caller to print.
pub fn junit_in(dir: &Path, label: &str) -> (crate::junit::JunitReport, Option<String>) {
    let path = dir.join("junit.xml");
    // A missing file reads as no tests: here it means pytest was ended.
    let junit = match path.is_file() {
        true => crate::junit::read_junit(&path),
        false => Err(anyhow::anyhow!("pytest wrote no {}", path.display())),
    };
    match (junit, crate::cluster::pytest::Timeline::read(dir)) {
        (Ok(j), _) => (j, None),
        (Err(_), Some(t)) if !t.tests.is_empty() => (
            t.as_junit(),
            Some(format!(
                "note: pytest wrote no JUnit XML{label} (it was ended): the tests are counted \
                 from the harness's timeline"
            )),
        ),
        (Err(e), _) => (
            crate::junit::JunitReport::default(),
            Some(format!("warning: {e:#}; counting no tests{label}")),
        ),
    }
}

/// The results folder is written by the tests container's user (uid 1000),
/// which need not be the host user.
pub fn results_dir(run_dir: &Path) -> Result<PathBuf> {
    let dir = run_dir.join("pytest");
    crate::fsx::writable_dir(&dir)?;
    // Where the harness asks for snapshots and the xtask answers.
    crate::fsx::writable_dir(&dir.join(DEADLINES_DIR))?;
    Ok(dir)
}

/// `20261125-143012-4242`: sortable, and unique per process.
pub fn new_run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}{mo:02}{d:02}-{:02}{:02}{:02}-{}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        std::process::id()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
