//! A cluster the user already runs (`dist-test --attach`): a Dask
//! scheduler and an ipyparallel controller somewhere the tests' container
//! can reach, with their workers and engines. The xtask starts only the
//! tests' container, from the project's image as on any run, after asking
//! the cluster (`packaging/docker/attach.py`, in a container of the same
//! image) whether its workers and engines run the same Python, LiberTEM,
//! dask, distributed and ipyparallel; it starts, restarts and removes
//! nothing of the user's. See docs/attach.md.

mod to;
mod versions;

pub use to::AttachTo;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::contract::{Cluster, Tests};
use crate::cluster::pytest::{harness_env, HARNESS_DIR, PYTEST_CACHE, STACKS_DIR};
use crate::cluster::spec::{
    Backend, Collected, Definition, Observation, ServiceSpan, ServiceState, TestLimits,
};
use crate::docker::{Docker, OneShot};
use crate::exec;
use crate::fsx;
use crate::labels::CHECKOUT_LABEL;
use crate::workspace::Workspace;

use versions::Seen;

/// Where the profile's security folder is, under IPYTHONDIR (/ipython in
/// the image): LiberTEM's `ipy_ctx` finds the client's file there.
const SECURITY: &str = "profile_default/security";
const CLIENT_FILE: &str = "ipcontroller-client.json";
/// How long attach.py waits for each answer of the cluster.
const LOOK_S: u64 = 10;

pub struct Attached<'a> {
    def: Definition,
    docker: Docker<'a>,
    to: AttachTo,
    /// The run's IPython folder, which holds a copy of the client's file
    /// (the profile must be writable): bound at /ipython, removed by `down`.
    ipython: PathBuf,
    harness: PathBuf,
    pytest_cache: PathBuf,
    label: String,
    ready_s: u64,
}

impl<'a> Attached<'a> {
    pub fn new(ws: &Workspace, docker: &Docker<'a>, def: Definition, to: AttachTo) -> Attached<'a> {
        Attached {
            pytest_cache: ws.pytest_cache(&def.mounts.source),
            ipython: (def.mounts.results.parent())
                .unwrap_or(Path::new("."))
                .join("ipython"),
            def,
            docker: docker.clone(),
            to,
            harness: ws.docker_dir(),
            label: format!("{CHECKOUT_LABEL}={}", ws.checkout_id),
            ready_s: ws.config.timeouts.ready_s,
        }
    }

    /// The tests' container: named, so that a snapshot and `down` find it.
    fn tests_name(&self) -> String {
        format!("{}-tests", self.def.name)
    }

    /// A container of the image on the user's network, with the harness
    /// and the client's connection file.
    fn one_shot<'s>(&'s self, env: &'s [String], command: Vec<String>) -> OneShot<'s> {
        let bind = |from: &Path, to: &str, mode: &str| format!("{}:{to}:{mode}", from.display());
        OneShot {
            image: &self.def.image.tag,
            user: "1000",
            online: true,
            network: self.to.network.as_deref(),
            volumes: vec![
                format!("{}:/venv:ro", self.def.image.runtime),
                bind(&self.harness, HARNESS_DIR, "ro"),
                bind(&self.ipython, "/ipython", "rw"),
            ],
            env: env.to_vec(),
            labels: vec![self.label.clone()],
            command,
            ..Default::default()
        }
    }

    /// The run's IPython profile with a copy of the client's file (its key
    /// runs code on the user's engines): owned by the containers' user
    /// (uid 1000) and private when this process may give it away (root)
    /// or is that user; otherwise readable, and said so.
    fn private_profile(&self) -> Result<()> {
        use std::os::unix::fs::{chown, PermissionsExt};
        let profile = self.ipython.join("profile_default");
        let dirs = ["security", "log", "pid", "startup"].map(|d| profile.join(d));
        for d in &dirs {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let copy = profile.join("security").join(CLIENT_FILE);
        std::fs::copy(&self.to.client_file, &copy)
            .with_context(|| format!("copying {}", self.to.client_file.display()))?;
        let mut all = vec![self.ipython.clone(), profile.clone()];
        all.extend(dirs);
        let given = all
            .iter()
            .chain([&copy])
            .all(|p| chown(p, Some(1000), Some(1000)).is_ok());
        let private = given || crate::workspace::uid() == Some(1000);
        let (dir_mode, file_mode) = if private {
            (0o700, 0o600)
        } else {
            (0o755, 0o644)
        };
        for d in &all {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(dir_mode))?;
        }
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(file_mode))?;
        if !private {
            eprintln!(
                "warning: the copy of the controller's key in {} is readable by this machine's \
                 other users (the containers run as uid 1000): run as root or as uid 1000 to \
                 keep it private",
                copy.display()
            );
        }
        Ok(())
    }

    /// The container that asks the cluster (one at a time, named so that
    /// one cut short is removed).
    fn look_name(&self) -> String {
        format!("{}-look", self.def.name)
    }

    /// What the cluster runs, asked once (attach.py, each of its waits
    /// bounded by LOOK_S; its container removed if it outlives them).
    fn look(&self) -> Result<Seen> {
        let name = self.look_name();
        self.docker.rm_force(std::slice::from_ref(&name));
        let command = [
            "python3",
            &format!("{HARNESS_DIR}/attach.py"),
            &self.to.scheduler,
            &format!("/ipython/{SECURITY}/{CLIENT_FILE}"),
            &LOOK_S.to_string(),
        ]
        .map(String::from)
        .to_vec();
        let mut one = self.one_shot(&[], command);
        one.name = Some(&name);
        // Python's start and imports, and three bounded waits.
        let limit = Duration::from_secs(4 * LOOK_S + 30);
        let out = self.docker.one_shot(&one, None, limit);
        if out.is_err() {
            self.docker.rm_force(std::slice::from_ref(&name));
        }
        let out = out.context("asking the attached cluster what it runs")?;
        serde_json::from_str(out.trim())
            .with_context(|| format!("reading attach.py's answer {out:?}"))
    }
}

impl Cluster for Attached<'_> {
    fn definition(&self) -> &Definition {
        &self.def
    }

    fn prepare(&mut self, ws: &Workspace) -> Result<Vec<String>> {
        // The default scratch folder is the harness's to open; the user's
        // is theirs, only checked.
        if self.to.scratch.starts_with(&ws.target) {
            fsx::writable_dir(&self.to.scratch)?;
        } else if !self.to.scratch.is_dir() {
            bail!(
                "--scratch {} is not a folder: make it, at the same path on the workers",
                self.to.scratch.display()
            );
        }
        fsx::writable_dir(&self.pytest_cache)?;
        self.private_profile()?;
        Ok(vec![self.def.image.runtime.clone()])
    }

    fn backend(&self) -> Backend {
        Backend::Attached {
            scheduler: self.to.scheduler.clone(),
        }
    }

    fn up(&self, _log: &Path) -> Result<()> {
        self.docker.ui().say(&format!(
            "attached to {} (and the controller of {}): nothing of it is started, restarted or \
             removed; its workers must see {} and {} at these paths",
            self.to.scheduler,
            self.to.client_file.display(),
            self.def.mounts.data.display(),
            self.to.scratch.display()
        ));
        Ok(())
    }

    /// Ready once the cluster answers with at least the run's workers
    /// (distinct hosts) and engines, all on the tests' versions; a version
    /// that differs ends the wait at once, one line each.
    fn ready(&self, timeout: Duration, _first: Option<Observation>) -> Result<Vec<ServiceSpan>> {
        let deadline = Instant::now() + timeout;
        let size = self.def.size;
        loop {
            crate::interrupt::check()?;
            let said = match self.look()? {
                Seen {
                    error: Some(why),
                    waiting,
                    ..
                } => {
                    if !waiting {
                        bail!("asking the attached cluster failed: {why}");
                    }
                    why
                }
                seen => {
                    let wrong = versions::mismatches(&seen);
                    if !wrong.is_empty() {
                        bail!(
                            "the attached cluster does not run what the tests run:\n{}",
                            wrong.join("\n")
                        );
                    }
                    let (hosts, engines) =
                        (seen.worker_hosts().len() as u32, seen.engines.len() as u32);
                    crate::live::status(format!("{hosts} worker hosts, {engines} engines"), None);
                    if hosts >= size.workers && engines >= size.engines {
                        return Ok(Vec::new());
                    }
                    format!(
                        "it has {hosts} Dask worker hosts and {engines} ipyparallel engines, the \
                         run wants {} and {} (--workers, --engines)",
                        size.workers, size.engines
                    )
                }
            };
            if Instant::now() > deadline {
                bail!(
                    "the attached cluster was not ready after {} s: {said}",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn start_tests(
        &self,
        command: &[String],
        limits: &TestLimits,
        log: &Path,
    ) -> Result<Box<dyn Tests + '_>> {
        let command = super::pytest::with_results(command, "/results");
        let (data, scratch) = (&self.def.mounts.data, &self.to.scratch);
        let engines = self.def.size.engines;
        let mut env: Vec<String> =
            harness_env(&self.to.scheduler, engines, self.ready_s, "/results")
                .into_iter()
                .chain([
                    ("DIST_TEST_STACKS", STACKS_DIR.to_string()),
                    // The workers are the user's: not restarted after a timeout.
                    ("DIST_TEST_NO_RESTART", "1".to_string()),
                    ("TESTDATA_BASE_PATH", data.display().to_string()),
                    ("TMP_TESTDATA_PATH", scratch.display().to_string()),
                ])
                .chain(limits.env("/results"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
        env.sort();
        let name = self.tests_name();
        let mut tests = self.one_shot(&env, command);
        tests.name = Some(&name);
        tests.workdir = Some("/src");
        let same = |p: &Path, mode: &str| format!("{0}:{0}:{mode}", p.display());
        tests.volumes.extend([
            format!("{}:/src:ro", self.def.mounts.source.display()),
            format!("{}:/results", self.def.mounts.results.display()),
            format!("{}:{PYTEST_CACHE}", self.pytest_cache.display()),
            same(data, "ro"),
            same(scratch, "rw"),
        ]);
        let bg = exec::start_logged(self.docker.one_shot_command(&tests), log, self.docker.ui())
            .context("starting the tests' container")?;
        Ok(Box::new(super::FollowedTests(bg)))
    }

    fn services(&self) -> Result<Vec<ServiceState>> {
        // None of the cluster's services is this harness's.
        Ok(Vec::new())
    }

    fn watch(&self, _lifetime: Duration) -> Result<Option<exec::Lines>> {
        Ok(None)
    }

    fn observe(&self) -> Option<Observation> {
        None
    }

    fn probe(&self, _args: &[&str]) -> Result<String> {
        bail!("an attached cluster is the user's: the harness neither probes nor restarts it")
    }

    fn exec_in(&self, service: &str, command: &[&str]) -> Option<std::process::Command> {
        (service == "tests").then(|| self.docker.exec_command(&self.tests_name(), command))
    }

    fn last_lines(&self, _service: &str, _n: usize) -> String {
        String::new()
    }

    fn collect(&self, _dir: &Path, _failed: bool) -> Collected {
        // The tests' output is in pytest.log; the cluster's logs are the user's.
        Collected::default()
    }

    fn published(&self) -> Vec<String> {
        Vec::new()
    }

    fn logs(&self, _services: &[String], _follow: bool) -> Result<ExitStatus> {
        bail!("an attached cluster's logs are where you started it")
    }

    /// The tests' container and the look's, should they outlive the run,
    /// and the copy of the client's file, whatever else failed.
    fn down(&self) -> Result<()> {
        let copy = fsx::remove_dir(&self.ipython);
        for name in [self.tests_name(), self.look_name()] {
            let there = self.docker.container_exists(&name);
            if there && !self.docker.rm_force(std::slice::from_ref(&name)) {
                bail!("the container {name} could not be removed: `docker rm -f {name}`");
            }
        }
        copy
    }

    /// Usable for the next test (after one that timed out) while it
    /// answers with enough workers and engines.
    fn unusable(&self) -> Option<String> {
        let size = self.def.size;
        match self.look() {
            Err(e) => Some(format!("{e:#}")),
            Ok(Seen {
                error: Some(why), ..
            }) => Some(why),
            Ok(seen) if (seen.worker_hosts().len() as u32) < size.workers => {
                Some("fewer Dask worker hosts than the run wants answer".into())
            }
            Ok(seen) if (seen.engines.len() as u32) < size.engines => {
                Some("fewer ipyparallel engines than the run wants answer".into())
            }
            Ok(_) => None,
        }
    }
}
