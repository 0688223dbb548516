//! One run of the tests container, as `dist-test` and `test` do it: its
//! folder under `target/dist-test/runs/`, its phases, and how it ends —
//! logs always kept, `summary.json` written, the exit code decided here.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::cluster::Timeline;
use crate::cluster::{declare_ready, pytest_command, pytest_command_naming, Cluster, Mounts};
use crate::context::Ctx;
use crate::exec::Background;
use crate::gha;
use crate::interrupt;
use crate::junit::{read_junit, JunitReport};
use crate::phases::Phases;
use crate::selection::{self, Choice, Settled};
use crate::summary::{DeadService, Summary, SCHEMA};
use crate::testdata::TestData;
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

/// The key of what the tests container's pytest collects from (see
/// selection.rs): the image it runs, as the tag names it now (`test` runs
/// it on a cluster that may have started from an older one), the mounts,
/// the compose variables but the run's own results folder, the command.
fn selection_key(
    cx: &Ctx,
    cluster: &Cluster,
    mounts: &Mounts,
    command: &[String],
) -> Result<String> {
    let tag = cx.ws.image_tag();
    let image_id = crate::image::image_id(cx.sh, &cx.tools.docker.cli, &tag)
        .with_context(|| format!("no image {tag}"))?;
    let env: Vec<(String, String)> = cluster
        .compose
        .env
        .iter()
        .filter(|(k, _)| k != "LT_RESULTS_DIR")
        .cloned()
        .collect();
    selection::Inputs {
        image_id: &image_id,
        source: &mounts.source,
        data: &mounts.data,
        docker_dir: &cx.ws.docker_dir(),
        command,
        env: &env,
    }
    .key()
}

/// Now, as Unix seconds: the harness in the container reads the same clock
/// on a Linux engine (on Docker Desktop the VM's clock may drift a little).
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The run's exit code: pytest's; 1 when the run failed around it or a
/// service died (even if pytest passed); 130 after a signal.
pub fn exit_code(interrupted: bool, outcome_ok: bool, pytest: Option<i32>, any_dead: bool) -> i32 {
    let code = match (outcome_ok, pytest) {
        _ if interrupted => 130,
        (true, Some(c)) => c,
        (false, Some(c)) if c != 0 => c,
        _ => 1,
    };
    if any_dead && code == 0 {
        1
    } else {
        code
    }
}

pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    /// Mounted at `/results` in the tests container.
    pub results: PathBuf,
    pub phases: Phases,
    /// The detector data the run mounted, for `summary.json`.
    pub data: Option<TestData>,
    /// On a swarm: the node each service ran on, and the nodes that were
    /// not Ready at the end, for `summary.json`.
    pub nodes: std::collections::BTreeMap<String, String>,
    pub dead_nodes: Vec<String>,
    pub pytest_code: Option<i32>,
    /// Which tests pytest was told to run (see selection.rs); `None` when
    /// the user's arguments chose them.
    pub selection: Option<Choice>,
    /// When the cluster was declared ready (Unix time).
    pub declared_ready: Option<f64>,
}

impl Run {
    pub fn new(ws: &Workspace) -> Result<Run> {
        let id = new_run_id();
        let dir = new_run_dir(&ws.target, &id)?;
        let results = results_dir(&dir)?;
        Ok(Run {
            id,
            dir,
            results,
            phases: Phases::default(),
            data: None,
            pytest_code: None,
            nodes: Default::default(),
            dead_nodes: Vec::new(),
            selection: None,
            declared_ready: None,
        })
    }

    /// Start pytest in the tests container: it starts and collects while
    /// the cluster gets ready, and runs no test before [`Run::tests`].
    /// Without arguments of the user's, it names the remembered selection
    /// when nothing it was made from has changed (selection.rs).
    pub fn start_tests(
        &mut self,
        cx: &Ctx,
        cluster: &Cluster,
        mounts: &Mounts,
        pytest_args: &[String],
    ) -> Result<Background> {
        let mut command = pytest_command(pytest_args);
        if pytest_args.is_empty() {
            // Only a shortcut: a key that cannot be made means collecting.
            match selection_key(cx, cluster, mounts, &command) {
                Ok(key) => {
                    let choice = Choice::recall(&cx.ws, key);
                    if let Some(r) = &choice.named {
                        let modules = r.modules();
                        command = pytest_command_naming(&modules);
                        cx.ui.say(&format!(
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
        cluster.start_tests(cx.sh, &command, &self.dir.join("pytest.log"))
    }

    /// The cluster is ready: let pytest run, timed as the `tests` phase,
    /// and keep its exit code. A timeout or a signal is an error.
    pub fn tests(&mut self, cx: &Ctx, pytest: Background) -> Result<()> {
        let limit = Duration::from_secs(cx.ws.config.timeouts.tests_s);
        let code = self.phases.time_streaming("tests", cx.ui, || {
            declare_ready(&self.results)?;
            self.declared_ready = Some(unix_now());
            let status = pytest.follow(cx.ui, Instant::now() + limit)?;
            Ok(status.map(|s| s.code().unwrap_or(128 + 2)))
        })?;
        self.pytest_code = code;
        match code {
            None => bail!("the tests did not finish within {} s", limit.as_secs()),
            Some(_) => interrupt::check(),
        }
    }

    /// Every service's log, and the services that died.
    pub fn collect(&self, sh: &Shell, cluster: &Cluster) -> Vec<DeadService> {
        let containers = cluster.containers(sh).unwrap_or_default();
        let dead = cluster.dead_services(sh, &containers);
        let _ = cluster.save_logs(&containers, &self.dir.join("logs"));
        dead
    }

    /// Write summary.json, print the result, and turn it into the exit code.
    pub fn conclude(
        &self,
        project: &str,
        cluster: &Cluster,
        dead: Vec<DeadService>,
        outcome: Result<()>,
    ) -> Result<()> {
        self.conclude_as(project, &cluster.compose.project, dead, outcome)
    }

    /// [`Run::conclude`] for a cluster known by its project (or stack) name.
    pub fn conclude_as(
        &self,
        project: &str,
        compose_project: &str,
        dead: Vec<DeadService>,
        outcome: Result<()>,
    ) -> Result<()> {
        let junit = read_junit(&self.results.join("junit.xml")).unwrap_or_else(|e| {
            eprintln!("warning: {e:#}; counting no tests");
            JunitReport::default()
        });
        let counts = junit.counts();
        let timeline = Timeline::read(&self.results);
        let pytest = timeline.as_ref().and_then(|t| {
            let how = match self.selection.as_ref().and_then(|c| c.named.as_ref()) {
                Some(r) => format!("named from run {}", r.run_id),
                None => "collected".to_string(),
            };
            t.times(self.declared_ready, how)
        });
        let mut mismatch = None;
        if let Some(choice) = &self.selection {
            let items = timeline.as_ref().map(|t| t.items.as_slice());
            match choice.settle(&self.id, items, self.pytest_code) {
                Settled::Quiet => {}
                Settled::Warning(w) => eprintln!("{w}"),
                Settled::Mismatch(m) => mismatch = Some(m),
            }
        }
        let mut exit_code = exit_code(
            interrupt::interrupted(),
            outcome.is_ok(),
            self.pytest_code,
            !dead.is_empty(),
        );
        if mismatch.is_some() && exit_code == 0 {
            exit_code = 1;
        }
        let error = match (&outcome, &mismatch) {
            (Err(e), _) => Some(format!("{e:#}")),
            (Ok(()), Some(m)) => Some(m.clone()),
            (Ok(()), None) => None,
        };
        let summary = Summary {
            schema: SCHEMA,
            run_id: self.id.clone(),
            project: project.to_string(),
            compose_project: compose_project.to_string(),
            nodes: self.nodes.clone(),
            dead_nodes: self.dead_nodes.clone(),
            counts: counts.clone(),
            pytest_s: junit.secs,
            pytest: pytest.clone(),
            slowest: junit.slow_tests(10),
            exit_code,
            phases: self.phases.clone(),
            dead_services: dead.clone(),
            error,
            data: self.data.clone(),
        };
        let path = self.dir.join("summary.json");
        fs::write(&path, summary.to_json())
            .with_context(|| format!("writing {}", path.display()))?;

        for d in &dead {
            eprintln!(
                "error: service {} died during the run ({}); last lines:\n{}",
                d.service, d.state, d.last_lines
            );
        }
        let line: Vec<String> = self
            .phases
            .0
            .iter()
            .map(|(n, s)| format!("{n} {s:.1}s"))
            .collect();
        eprintln!("phases: {}", line.join(", "));
        if let Some(p) = &pytest {
            eprintln!("pytest: {}", p.describe());
        }
        eprintln!(
            "result: {} passed, {} failed, {} skipped, {} errors; exit code {exit_code}",
            counts.passed, counts.failed, counts.skipped, counts.errors
        );
        for m in &counts.skipped_at_collection {
            eprintln!("  not a dist test: {m}, skipped by pytest while collecting");
        }
        for r in &counts.skip_reasons {
            eprintln!("  skipped {}x: {}", r.count, r.reason);
        }
        eprintln!("results and logs: {}", self.dir.display());
        gha::report(project, &summary, &junit);
        if let Err(e) = outcome {
            eprintln!("error: {e:#}");
        }
        if let Some(m) = mismatch {
            eprintln!("error: {m}");
        }
        if exit_code != 0 {
            return Err(ExitCode(exit_code).into());
        }
        Ok(())
    }
}

/// The results folder is written by the tests container's user (uid 1000),
/// which need not be the host user.
pub fn results_dir(run_dir: &Path) -> Result<PathBuf> {
    let dir = run_dir.join("pytest");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
    }
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

/// Create `target/dist-test/runs/<id>/` and point `target/dist-test/last` at it.
pub fn new_run_dir(target: &Path, run_id: &str) -> Result<PathBuf> {
    let dir = target.join("runs").join(run_id);
    fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    let last = target.join("last");
    let _ = fs::remove_file(&last);
    #[cfg(unix)]
    std::os::unix::fs::symlink(Path::new("runs").join(run_id), &last)
        .with_context(|| format!("linking {}", last.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_rules() {
        // pytest's own code when the run around it went well
        assert_eq!(exit_code(false, true, Some(0), false), 0);
        assert_eq!(exit_code(false, true, Some(4), false), 4);
        // a failure before the tests, or a timeout
        assert_eq!(exit_code(false, false, None, false), 1);
        // a failure after pytest failed keeps pytest's code
        assert_eq!(exit_code(false, false, Some(2), false), 2);
        assert_eq!(exit_code(false, false, Some(0), false), 1);
        // a dead service fails a passing run, and leaves a failing one alone
        assert_eq!(exit_code(false, true, Some(0), true), 1);
        assert_eq!(exit_code(false, true, Some(5), true), 5);
        // a signal wins
        assert_eq!(exit_code(true, true, Some(0), false), 130);
        assert_eq!(exit_code(true, false, None, true), 130);
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
