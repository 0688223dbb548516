//! Bringing a cluster up, knowing when it is ready, running the tests
//! container against it, keeping its logs and taking it down.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::compose::Compose;
use crate::image::CHECKOUT_LABEL;
use crate::interrupt;
use crate::report::{tail, DeadService};
use crate::tools::Tools;
use crate::ui;
use crate::workspace::Workspace;

const PROJECT_LABEL: &str = "com.docker.compose.project";
const PROBE: &str = "/opt/dist-test/probe.py";

/// How big a cluster is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub workers: u32,
    pub engines: u32,
    pub worker_cpus: u32,
}

impl Size {
    pub fn worker_hosts(&self) -> Vec<String> {
        (1..=self.workers).map(|i| format!("worker-{i}")).collect()
    }

    pub fn services(&self) -> Vec<String> {
        let mut s = vec!["scheduler".to_string(), "ipy-controller".to_string()];
        s.extend(self.worker_hosts());
        s.extend((1..=self.engines).map(|i| format!("ipy-worker-{i}")));
        s
    }
}

pub struct Cluster {
    pub compose: Compose,
    pub docker: PathBuf,
    pub size: Size,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub service: String,
    pub state: String,
    pub status: String,
    pub oneoff: bool,
}

impl Cluster {
    pub fn new(
        ws: &Workspace,
        tools: &Tools,
        project: String,
        size: Size,
        data_dir: &Path,
        results_dir: &Path,
    ) -> Result<Cluster> {
        let mut files = vec![ws.compose_file()];
        if let Some(extra) = size_override(size, &ws.docker_dir().join("services.yml")) {
            let path = ws
                .target
                .join(format!("size-{}x{}.yml", size.workers, size.engines));
            fs::write(&path, extra).with_context(|| format!("writing {}", path.display()))?;
            files.push(path);
        }
        let env = vec![
            ("LT_IMAGE".to_string(), ws.image_tag()),
            ("LT_DATA_DIR".to_string(), data_dir.display().to_string()),
            (
                "LT_RESULTS_DIR".to_string(),
                results_dir.display().to_string(),
            ),
            ("LT_CHECKOUT".to_string(), ws.checkout_id.clone()),
            ("LT_WORKER_CPUS".to_string(), size.worker_cpus.to_string()),
        ];
        Ok(Cluster {
            compose: Compose {
                flavour: tools.compose.clone(),
                files,
                project,
                env,
            },
            docker: tools.docker.cli.clone(),
            size,
        })
    }

    /// `up -d`: (re)create what changed; compose waits for the healthchecks
    /// that other services depend on.
    pub fn up(&self, sh: &Shell, log: &Path) -> Result<()> {
        let mut args = vec!["up", "--detach", "--remove-orphans"];
        let scale_off: Vec<String> = self.scaled_off();
        for s in &scale_off {
            args.extend(["--scale", s.as_str()]);
        }
        let command: Command = self.compose.cmd(sh, &args).into();
        crate::image::run_logged(command, log, ui::verbose()).context("starting the cluster")
    }

    /// Services of the committed file that a smaller size leaves out.
    fn scaled_off(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in (self.size.workers + 1)..=2 {
            out.push(format!("worker-{i}=0"));
        }
        for i in (self.size.engines + 1)..=2 {
            out.push(format!("ipy-worker-{i}=0"));
        }
        out
    }

    /// Every container of this compose project, one-off ones included.
    pub fn containers(&self, sh: &Shell) -> Result<Vec<Container>> {
        let docker = &self.docker;
        let filter = format!("label={PROJECT_LABEL}={}", self.compose.project);
        let format = "{{.ID}}\t{{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}\t{{.Label \"com.docker.compose.oneoff\"}}";
        let out = ui::echo(cmd!(
            sh,
            "{docker} ps --all --no-trunc --filter {filter} --format {format}"
        ))
        .read()
        .context("listing the cluster's containers")?;
        Ok(parse_ps(&out))
    }

    fn service_container(&self, sh: &Shell, service: &str) -> Result<Option<Container>> {
        Ok(self
            .containers(sh)?
            .into_iter()
            .find(|c| c.service == service && !c.oneoff))
    }

    fn probe(&self, sh: &Shell, service: &str, what: &str) -> Option<String> {
        let c = self.service_container(sh, service).ok()??;
        if c.state != "running" {
            return None;
        }
        let docker = &self.docker;
        let id = &c.id;
        cmd!(sh, "{docker} exec {id} python3 {PROBE} {what}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
    }

    /// Dask hosts with all their CPU workers and a service worker registered.
    pub fn ready_dask_hosts(&self, sh: &Shell) -> Option<Vec<String>> {
        let out = self.probe(sh, "scheduler", "dask-hosts")?;
        Some(ready_hosts(&out, self.size.worker_cpus))
    }

    pub fn engine_count(&self, sh: &Shell) -> Option<u32> {
        self.probe(sh, "ipy-controller", "engines")?
            .trim()
            .parse()
            .ok()
    }

    /// Poll, bounded, until the scheduler has every worker host and the
    /// controller every engine. On failure, name what is missing and show
    /// its last log lines.
    pub fn wait_ready(&self, sh: &Shell, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let want_hosts = self.size.worker_hosts();
        loop {
            interrupt::check()?;
            let containers = self.containers(sh)?;
            for svc in self.size.services() {
                match containers.iter().find(|c| c.service == svc && !c.oneoff) {
                    Some(c) if c.state == "running" => {}
                    Some(c) => bail!(
                        "service {svc} is {} ({}) before the cluster was ready; its last log lines:\n{}",
                        c.state,
                        c.status,
                        self.last_lines(sh, &c.id, 20)
                    ),
                    None => bail!("service {svc} has no container; was the cluster started?"),
                }
            }
            let hosts = self.ready_dask_hosts(sh).unwrap_or_default();
            let engines = self.engine_count(sh).unwrap_or(0);
            let missing: Vec<&String> = want_hosts.iter().filter(|h| !hosts.contains(h)).collect();
            if missing.is_empty() && engines >= self.size.engines {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let (svc, what) = match missing.first() {
                    Some(h) => (
                        h.to_string(),
                        format!("Dask worker host {h} has not registered"),
                    ),
                    None => (
                        "ipy-controller".to_string(),
                        format!(
                            "{engines} of {} ipyparallel engines registered",
                            self.size.engines
                        ),
                    ),
                };
                let lines = match containers.iter().find(|c| c.service == svc) {
                    Some(c) => self.last_lines(sh, &c.id, 20),
                    None => String::new(),
                };
                bail!(
                    "the cluster was not ready after {} s: {what}; last log lines of {svc}:\n{lines}",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn last_lines(&self, sh: &Shell, id: &str, n: usize) -> String {
        let docker = &self.docker;
        let n_s = n.to_string();
        match cmd!(sh, "{docker} logs --tail {n_s} {id}")
            .quiet()
            .ignore_status()
            .output()
        {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                tail(&text, n)
            }
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// Run pytest in the tests container; its output goes to the terminal
    /// and to `log`. `None` when the timeout stopped it.
    pub fn run_tests(
        &self,
        sh: &Shell,
        pytest_args: &[String],
        log: &Path,
        timeout: Duration,
    ) -> Result<Option<i32>> {
        let mut args: Vec<&str> = vec![
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "tests",
            "pytest",
            "tests/",
            "-m",
            "dist",
            "-p",
            "no:cacheprovider",
            "--junitxml=/results/junit.xml",
        ];
        args.extend(pytest_args.iter().map(String::as_str));
        let mut command: Command = self.compose.cmd(sh, &args).into();
        if ui::verbose() {
            eprintln!("$ {command:?}");
        }
        let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the tests container")?;
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let f2 = file.try_clone()?;
        let show = !ui::quiet();
        let t1 = std::thread::spawn(move || tee_maybe(out, file, show));
        let t2 = std::thread::spawn(move || tee_maybe(err, f2, show));
        let status = interrupt::wait(child, Some(Instant::now() + timeout))?;
        let _ = t1.join();
        let _ = t2.join();
        Ok(status.map(|s| s.code().unwrap_or(128 + 2)))
    }

    /// Cluster services that are not running, with their exit codes and last lines.
    pub fn dead_services(&self, sh: &Shell) -> Result<Vec<DeadService>> {
        let mut dead = Vec::new();
        for c in self.containers(sh)? {
            if c.oneoff || c.state == "running" {
                continue;
            }
            dead.push(DeadService {
                service: c.service.clone(),
                state: c.status.clone(),
                exit_code: exit_code_of(&c.status),
                last_lines: self.last_lines(sh, &c.id, 20),
            });
        }
        Ok(dead)
    }

    /// Every service's log, one file each, in `dir`.
    pub fn save_logs(&self, sh: &Shell, dir: &Path) -> Result<usize> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut n = 0;
        for c in self.containers(sh)? {
            let name = if c.oneoff {
                format!("{}-run", c.service)
            } else {
                c.service.clone()
            };
            let path = dir.join(format!("{name}.log"));
            let file =
                fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let status = Command::new(&self.docker)
                .args(["logs", "--timestamps", &c.id])
                .stdout(file.try_clone()?)
                .stderr(file)
                .status()
                .context("running docker logs")?;
            if status.success() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Remove every container, network and volume of this project. Safe to
    /// repeat; runs in its own process group so a second Ctrl-C cannot cut it.
    pub fn down(&self, sh: &Shell) -> Result<()> {
        let mut command: Command = self
            .compose
            .cmd(
                sh,
                &["down", "--volumes", "--remove-orphans", "--timeout", "5"],
            )
            .into();
        if ui::verbose() {
            eprintln!("$ {command:?}");
        }
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let out = command
            .stdin(Stdio::null())
            .output()
            .context("running compose down")?;
        // Whatever compose missed (a one-off container, a half-created
        // network), remove by label.
        let leftovers = sweep(
            sh,
            &self.docker,
            &format!("label={PROJECT_LABEL}={}", self.compose.project),
        )?;
        if !out.status.success() && leftovers > 0 {
            bail!(
                "compose down failed: {}",
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            );
        }
        Ok(())
    }
}

/// Remove containers, then networks, then volumes matching a docker filter.
/// Returns how many objects were left after the attempt.
pub fn sweep(sh: &Shell, docker: &Path, filter: &str) -> Result<usize> {
    let ids = |kind: &str| -> Vec<String> {
        let args: Vec<&str> = match kind {
            "container" => vec!["ps", "--all", "--quiet"],
            "network" => vec!["network", "ls", "--quiet"],
            _ => vec!["volume", "ls", "--quiet"],
        };
        cmd!(sh, "{docker} {args...} --filter {filter}")
            .quiet()
            .read()
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    let containers = ids("container");
    if !containers.is_empty() {
        let _ = cmd!(sh, "{docker} rm --force --volumes {containers...}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
    let networks = ids("network");
    if !networks.is_empty() {
        let _ = cmd!(sh, "{docker} network rm {networks...}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
    let volumes = ids("volume");
    if !volumes.is_empty() {
        let _ = cmd!(sh, "{docker} volume rm --force {volumes...}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
    Ok(ids("container").len() + ids("network").len() + ids("volume").len())
}

/// Compose projects of this checkout that have anything left on the engine.
pub fn checkout_projects(sh: &Shell, docker: &Path, checkout_id: &str) -> Result<Vec<String>> {
    let filter = format!("label={CHECKOUT_LABEL}={checkout_id}");
    let format = format!("{{{{.Label \"{PROJECT_LABEL}\"}}}}");
    let mut projects = Vec::new();
    for args in [
        vec!["ps", "--all"],
        vec!["network", "ls"],
        vec!["volume", "ls"],
    ] {
        let out = cmd!(sh, "{docker} {args...} --filter {filter} --format {format}")
            .quiet()
            .read()
            .context("listing this checkout's clusters")?;
        for p in out.lines().map(str::trim).filter(|p| !p.is_empty()) {
            if !projects.iter().any(|q| q == p) {
                projects.push(p.to_string());
            }
        }
    }
    Ok(projects)
}

fn tee_maybe(from: impl std::io::Read, file: fs::File, show: bool) {
    if show {
        crate::image::tee(from, file, std::io::stderr());
    } else {
        crate::image::tee(from, file, std::io::sink());
    }
}

pub fn parse_ps(out: &str) -> Vec<Container> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 || f[0].is_empty() {
                return None;
            }
            Some(Container {
                id: f[0].to_string(),
                service: f[1].to_string(),
                state: f[2].to_string(),
                status: f[3].to_string(),
                oneoff: f.get(4).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            })
        })
        .collect()
}

/// `Exited (137) 5 seconds ago` -> 137.
pub fn exit_code_of(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

/// Hosts whose CPU workers and service worker have all registered, from the
/// probe's `HOST CPU SERVICE` lines.
pub fn ready_hosts(probe_out: &str, cpus: u32) -> Vec<String> {
    probe_out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (cpu, svc): (u32, u32) = (f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?);
            (cpu >= cpus && svc >= 1).then(|| f[0].to_string())
        })
        .collect()
}

/// Extra services for sizes beyond the committed file's two workers and two
/// engines, built from the same templates (`services.yml`) through `extends`.
pub fn size_override(size: Size, templates: &Path) -> Option<String> {
    if size.workers <= 2 && size.engines <= 2 {
        return None;
    }
    let file = templates.display();
    let mut y = String::from(
        "# Generated by cargo xtask for this cluster size; not committed.\nservices:\n",
    );
    for i in 3..=size.workers {
        y.push_str(&format!(
            "  worker-{i}:\n    extends: {{ file: \"{file}\", service: dask-worker }}\n    hostname: worker-{i}\n    depends_on:\n      scheduler:\n        condition: service_healthy\n"
        ));
    }
    for i in 3..=size.engines {
        y.push_str(&format!(
            "  ipy-worker-{i}:\n    extends: {{ file: \"{file}\", service: ipy-engine }}\n    hostname: ipy-worker-{i}\n    depends_on:\n      ipy-controller:\n        condition: service_healthy\n"
        ));
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines() {
        let out = "abc\tscheduler\trunning\tUp 5 seconds (healthy)\tFalse\n\
                   def\ttests\texited\tExited (1) 2 seconds ago\tTrue\n\n";
        let c = parse_ps(out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].service, "scheduler");
        assert!(!c[0].oneoff);
        assert!(c[1].oneoff);
        assert_eq!(exit_code_of(&c[1].status), Some(1));
        assert_eq!(exit_code_of("Up 3 minutes"), None);
    }

    #[test]
    fn hosts_need_all_cpus_and_a_service_worker() {
        let out = "worker-1 2 1\nworker-2 1 1\nworker-3 2 0\n";
        assert_eq!(ready_hosts(out, 2), vec!["worker-1"]);
        assert_eq!(ready_hosts(out, 1), vec!["worker-1", "worker-2"]);
        assert!(ready_hosts("garbage", 1).is_empty());
    }

    #[test]
    fn sizes() {
        let s = Size {
            workers: 3,
            engines: 1,
            worker_cpus: 2,
        };
        assert_eq!(
            s.services(),
            [
                "scheduler",
                "ipy-controller",
                "worker-1",
                "worker-2",
                "worker-3",
                "ipy-worker-1"
            ]
        );
        let t = Path::new("/repo/packaging/docker/services.yml");
        let y = size_override(s, t).unwrap();
        assert!(
            y.contains("  worker-3:\n    extends: { file: \"/repo/packaging/docker/services.yml\", service: dask-worker }"),
            "{y}"
        );
        assert!(y.contains("hostname: worker-3"));
        assert!(!y.contains("ipy-worker-3"));
        let two = Size {
            workers: 2,
            engines: 2,
            worker_cpus: 2,
        };
        assert!(size_override(two, t).is_none());
    }
}
