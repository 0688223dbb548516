//! One deployed stack: `docker stack deploy` of a [`StackSpec`], the wait
//! for the one-off task to say the cluster is ready, the wait for the
//! tests, and `docker stack rm` until nothing of it is left.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::StackSpec;
use crate::exec;
use crate::interrupt;

/// One deployed stack.
pub struct Stack {
    pub name: String,
    pub docker: PathBuf,
    /// Every service, the one-off last.
    pub services: Vec<String>,
    /// The one-off service: `tests`, or `ready` (see [`StackSpec::one_off`]).
    pub one_off: String,
}

impl Stack {
    pub fn deploy(
        sh: &Shell,
        docker: &Path,
        name: &str,
        spec: &StackSpec,
        file: &Path,
    ) -> Result<Stack> {
        fs::write(file, spec.text()).with_context(|| format!("writing {}", file.display()))?;
        let mut services = spec.size.services();
        services.push(spec.one_off().into());
        cmd!(
            sh,
            "{docker} stack deploy --prune --resolve-image never --compose-file {file} {name}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .context("deploying the stack")?;
        Ok(Stack {
            name: name.to_string(),
            docker: docker.to_path_buf(),
            services,
            one_off: spec.one_off().into(),
        })
    }

    /// `docker stack deploy` again with `spec`: services whose definition
    /// did not change keep running; the one-off becomes `spec`'s.
    pub fn redeploy(&mut self, sh: &Shell, spec: &StackSpec, file: &Path) -> Result<()> {
        let name = self.name.clone();
        *self = Stack::deploy(sh, &self.docker, &name, spec, file)?;
        Ok(())
    }

    /// Remove the one-off service (its task has ended), so that the next
    /// deploy starts it afresh.
    pub fn remove_one_off(&self, sh: &Shell) -> Result<()> {
        let (docker, svc) = (&self.docker, self.service(&self.one_off));
        cmd!(sh, "{docker} service rm {svc}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("removing the service {svc}"))
    }

    /// The output of `probe.py WHAT` in `service`'s container, which runs
    /// on the manager (scheduler, controller): `None` when it does not answer.
    pub fn probe(&self, sh: &Shell, service: &str, what: &str) -> Option<String> {
        let docker = &self.docker;
        let filter = format!(
            "label=com.docker.swarm.service.name={}",
            self.service(service)
        );
        let id = cmd!(sh, "{docker} ps --quiet --filter {filter}")
            .quiet()
            .read()
            .ok()?;
        let id = id.lines().next()?.trim().to_string();
        cmd!(
            sh,
            "{docker} exec {id} python3 /opt/dist-test/probe.py {what}"
        )
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
    }

    /// Each service's replicas as `docker service ls` shows them
    /// (`1/1`), by service.
    pub fn replicas(&self, sh: &Shell) -> BTreeMap<String, String> {
        let docker = &self.docker;
        let filter = format!("label=com.docker.stack.namespace={}", self.name);
        let format = "{{.Name}} {{.Replicas}}";
        let out = cmd!(
            sh,
            "{docker} service ls --filter {filter} --format {format}"
        )
        .quiet()
        .read()
        .unwrap_or_default();
        let prefix = format!("{}_", self.name);
        out.lines()
            .filter_map(|l| {
                let (name, replicas) = l.split_once(' ')?;
                Some((
                    name.strip_prefix(&prefix)?.to_string(),
                    replicas.trim().to_string(),
                ))
            })
            .collect()
    }

    pub(super) fn service(&self, s: &str) -> String {
        format!("{}_{s}", self.name)
    }

    /// The tests task's state and exit code, once it has ended.
    fn tests_ended(&self, sh: &Shell) -> Option<(String, Option<i32>)> {
        let docker = &self.docker;
        let svc = self.service(&self.one_off);
        let format = "{{.ID}} {{.CurrentState}}";
        let out = cmd!(sh, "{docker} service ps --no-trunc --format {format} {svc}")
            .quiet()
            .read()
            .ok()?;
        let line = out.lines().next()?;
        let (id, state) = line.split_once(' ')?;
        let word = state.split_whitespace().next().unwrap_or("");
        if !["Complete", "Failed", "Rejected", "Shutdown", "Orphaned"].contains(&word) {
            return None;
        }
        let format = "{{.Status.ContainerStatus.ExitCode}}";
        let code = cmd!(sh, "{docker} inspect --format {format} {id}")
            .quiet()
            .read()
            .ok()
            .and_then(|c| c.trim().parse().ok());
        Some((state.to_string(), code))
    }

    /// The one-off task's standard output: its readiness wait's words.
    fn tests_log(&self, sh: &Shell) -> String {
        let docker = &self.docker;
        let svc = self.service(&self.one_off);
        cmd!(sh, "{docker} service logs --raw {svc}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default()
    }

    /// Until the tests task says the cluster is ready (its readiness wait
    /// passed), or it ended without.
    pub fn wait_ready(&self, sh: &Shell, timeout: Duration) -> Result<()> {
        let (docker, svc) = (&self.docker, self.service(&self.one_off));
        let deadline = Instant::now() + timeout;
        loop {
            interrupt::check()?;
            let log = self.tests_log(sh);
            if log.contains("dist-test: cluster ready") {
                return Ok(());
            }
            let status = log
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("dist-test: "))
                .unwrap_or("no word from the tests task yet");
            crate::live::status(status.to_string(), None);
            if let Some((state, _)) = self.tests_ended(sh) {
                // Its stderr too: a probe that could not run says why there.
                let stderr = cmd!(sh, "{docker} service logs --raw {svc}")
                    .quiet()
                    .ignore_stdout()
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                bail!(
                    "the cluster was not ready: the tests task ended ({state}); its log:\n{}",
                    exec::tail(&format!("{log}{stderr}"), 20)
                );
            }
            if Instant::now() > deadline {
                let not_running = self.not_running(sh);
                let tasks = if not_running.is_empty() {
                    "every service's task is running".to_string()
                } else {
                    format!("not running: {}", not_running.join(", "))
                };
                bail!(
                    "the cluster was not ready after {} s ({status}); {tasks}; \
                     each service's log is kept with the run",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Until the tests task ends; its log into `log`, its exit code.
    pub fn wait_tests(&self, sh: &Shell, log: &Path, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        let ended = loop {
            interrupt::check()?;
            if let Some((_, code)) = self.tests_ended(sh) {
                break code;
            }
            if Instant::now() > deadline {
                bail!("the tests did not finish within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        // Both streams, as they came: pytest's report and whatever Python
        // said on stderr.
        let mut logs = Command::new(&self.docker);
        logs.args(["service", "logs", "--raw"])
            .arg(self.service(&self.one_off));
        exec::run_all_to_files(vec![(logs, log.to_path_buf())])?;
        let text = String::from_utf8_lossy(
            &fs::read(log).with_context(|| format!("reading {}", log.display()))?,
        )
        .into_owned();
        eprint!("{text}");
        if !text.is_empty() && !text.ends_with('\n') {
            eprintln!();
        }
        Ok(ended)
    }

    /// `stack rm`, then wait until its services, tasks and network are gone.
    pub fn remove(&self, sh: &Shell) -> Result<()> {
        let (docker, name) = (&self.docker, &self.name);
        cmd!(sh, "{docker} stack rm {name}")
            .quiet()
            .ignore_stdout()
            .run()
            .context("removing the stack")?;
        let filter = format!("label=com.docker.stack.namespace={name}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let networks = cmd!(sh, "{docker} network ls --quiet --filter {filter}")
                .quiet()
                .read()
                .unwrap_or_default();
            let services = cmd!(sh, "{docker} service ls --quiet --filter {filter}")
                .quiet()
                .read()
                .unwrap_or_default();
            if networks.trim().is_empty() && services.trim().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the stack {name} was not gone 120 s after `stack rm`");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
