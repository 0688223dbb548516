//! When a cluster is ready: one verdict for `up`, `dist-test` (waiting for
//! it) and `status` (showing it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use xshell::Shell;

use super::{Cluster, Container, Size};
use crate::{exec, interrupt};

/// What the cluster looks like now, against what its size wants.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub size: Size,
    /// Long-running containers (one-off ones, like the tests container, left out).
    pub containers: Vec<Container>,
    /// Dask hosts with all their CPU workers and a service worker registered.
    pub hosts: Vec<String>,
    /// ipyparallel engines registered with the controller.
    pub engines: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ready,
    /// A service is not running, or has no container: waiting will not help.
    Broken {
        service: String,
        container: Option<Container>,
    },
    /// Still coming up: the service to blame, and what it lacks.
    Waiting {
        service: String,
        what: String,
    },
}

impl Readiness {
    /// Look once: the containers, then what the scheduler and the
    /// controller have registered (nothing, when they are not running).
    pub fn probe(cluster: &Cluster, sh: &Shell) -> Result<Readiness> {
        let containers = cluster.long_running(sh)?;
        let find = |service: &str| containers.iter().find(|c| c.service == service);
        let hosts = find("scheduler")
            .and_then(|c| cluster.probe(sh, c, "dask-hosts"))
            .map(|out| ready_hosts(&out, cluster.size.worker_cpus))
            .unwrap_or_default();
        let engines = find("ipy-controller")
            .and_then(|c| cluster.probe(sh, c, "engines"))
            .and_then(|out| out.trim().parse().ok())
            .unwrap_or(0);
        Ok(Readiness {
            size: cluster.size,
            containers,
            hosts,
            engines,
        })
    }

    /// `dask worker hosts 1/2, ipyparallel engines 0/2`
    pub fn counts(&self) -> String {
        let hosts = self
            .size
            .worker_hosts()
            .iter()
            .filter(|h| self.hosts.contains(h))
            .count();
        format!(
            "dask worker hosts {hosts}/{}, ipyparallel engines {}/{}",
            self.size.workers,
            self.engines.min(self.size.engines),
            self.size.engines
        )
    }

    pub fn container(&self, service: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.service == service)
    }

    /// Ready when every service runs, the scheduler has every worker host
    /// and the controller every engine.
    pub fn verdict(&self) -> Verdict {
        for service in self.size.services() {
            match self.container(&service) {
                Some(c) if c.state == "running" => {}
                c => {
                    return Verdict::Broken {
                        service,
                        container: c.cloned(),
                    }
                }
            }
        }
        let missing = self
            .size
            .worker_hosts()
            .into_iter()
            .find(|h| !self.hosts.contains(h));
        match missing {
            Some(h) => Verdict::Waiting {
                what: format!("Dask worker host {h} has not registered"),
                service: h,
            },
            None if self.engines < self.size.engines => Verdict::Waiting {
                service: "ipy-controller".into(),
                what: format!(
                    "{} of {} ipyparallel engines registered",
                    self.engines, self.size.engines
                ),
            },
            None => Verdict::Ready,
        }
    }
}

/// One line of `probe.py watch`: what has registered so far.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Observation {
    /// `{host: [cpu workers, service workers]}`
    pub hosts: BTreeMap<String, [u32; 2]>,
    pub engines: u32,
}

impl Observation {
    fn ready_hosts(&self, cpus: u32) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, &[cpu, service])| host_ready(cpu, service, cpus))
            .map(|(h, _)| h.clone())
            .collect()
    }
}

impl Cluster {
    /// Wait, bounded, until the verdict is ready. On failure, name what is
    /// missing and show its last log lines. What has registered comes from
    /// one `probe.py watch` in the scheduler's container for the whole wait
    /// (a line at every change; a `docker exec` per look cost about 0.3 s
    /// of CPU each, which the services starting beside it need); whether
    /// every service still runs, from the container list once a second.
    pub fn wait_ready(&self, sh: &Shell, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut seen = Observation::default();
        let mut watcher: Option<exec::Lines> = None;
        loop {
            interrupt::check()?;
            let containers = self.long_running(sh)?;
            if watcher.is_none() {
                let scheduler = containers
                    .iter()
                    .find(|c| c.service == "scheduler" && c.state == "running");
                if let Some(c) = scheduler {
                    watcher = Some(self.watch(c, deadline)?);
                }
            }
            let now = Readiness {
                size: self.size,
                containers,
                hosts: seen.ready_hosts(self.size.worker_cpus),
                engines: seen.engines,
            };
            crate::live::status(now.counts(), None);
            match now.verdict() {
                Verdict::Ready => return Ok(()),
                Verdict::Broken {
                    service,
                    container: Some(c),
                } => bail!(
                    "service {service} is {} ({}) before the cluster was ready; its last log lines:\n{}",
                    c.state,
                    c.status,
                    self.last_lines(sh, &c.id, 20)
                ),
                Verdict::Broken {
                    service,
                    container: None,
                } => bail!("service {service} has no container; was the cluster started?"),
                Verdict::Waiting { service, what } if Instant::now() >= deadline => {
                    let lines = match now.container(&service) {
                        Some(c) => self.last_lines(sh, &c.id, 20),
                        None => String::new(),
                    };
                    bail!(
                        "the cluster was not ready after {} s: {what}; last log lines of {service}:\n{lines}",
                        timeout.as_secs()
                    );
                }
                Verdict::Waiting { .. } => {}
            }
            // News from the watcher, or a second passes and the containers
            // are looked at again.
            let Some(w) = watcher.as_mut() else {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            };
            if let Some(line) = w.next(Duration::from_secs(1)) {
                seen = serde_json::from_str(&line)
                    .with_context(|| format!("reading the readiness probe's line {line:?}"))?;
                continue;
            }
            if let Some(status) = w.exited()? {
                // 0: ready by its count (the verdict above decides by name;
                // a new watcher looks again); 3: its time is up, and so is
                // ours. Anything else is the probe failing, unless the
                // scheduler went (the container list says so next).
                if !matches!(status.code(), Some(0) | Some(3)) && self.scheduler_runs(sh)? {
                    let err = w.stderr();
                    bail!(
                        "the readiness probe in the scheduler's container failed ({status}): {}",
                        err.lines().last().unwrap_or("no output")
                    );
                }
                watcher = None;
            }
        }
    }

    fn scheduler_runs(&self, sh: &Shell) -> Result<bool> {
        Ok(self
            .long_running(sh)?
            .iter()
            .any(|c| c.service == "scheduler" && c.state == "running"))
    }
}

fn host_ready(cpu: u32, service: u32, cpus: u32) -> bool {
    cpu >= cpus && service >= 1
}

/// probe's `HOST CPU SERVICE` lines.
pub fn ready_hosts(probe_out: &str, cpus: u32) -> Vec<String> {
    probe_out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (cpu, svc): (u32, u32) = (f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?);
            host_ready(cpu, svc, cpus).then(|| f[0].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(service: &str, state: &str) -> Container {
        Container {
            id: format!("id-{service}"),
            service: service.into(),
            state: state.into(),
            status: if state == "running" {
                "Up 5 seconds".into()
            } else {
                "Exited (137) 1 second ago".into()
            },
            oneoff: false,
        }
    }

    fn two_by_two(hosts: &[&str], engines: u32) -> Readiness {
        let size = Size {
            workers: 2,
            engines: 2,
            worker_cpus: 2,
        };
        Readiness {
            size,
            containers: size
                .services()
                .iter()
                .map(|s| container(s, "running"))
                .collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            engines,
        }
    }

    #[test]
    fn a_watch_line_reads_as_hosts_and_engines() {
        let line = r#"{"hosts": {"worker-2": [2, 1], "worker-1": [1, 1]}, "engines": 1}"#;
        let seen: Observation = serde_json::from_str(line).unwrap();
        assert_eq!(seen.engines, 1);
        assert_eq!(seen.ready_hosts(2), vec!["worker-2"]);
        assert_eq!(seen.ready_hosts(1), vec!["worker-1", "worker-2"]);
        let none: Observation = serde_json::from_str(r#"{"hosts": {}, "engines": 0}"#).unwrap();
        assert_eq!(none, Observation::default());
    }

    #[test]
    fn hosts_need_all_cpus_and_a_service_worker() {
        let out = "worker-1 2 1\nworker-2 1 1\nworker-3 2 0\n";
        assert_eq!(ready_hosts(out, 2), vec!["worker-1"]);
        assert_eq!(ready_hosts(out, 1), vec!["worker-1", "worker-2"]);
        assert!(ready_hosts("garbage", 1).is_empty());
    }

    #[test]
    fn ready_needs_every_host_and_engine() {
        assert_eq!(
            two_by_two(&["worker-1", "worker-2"], 2).verdict(),
            Verdict::Ready
        );
        assert_eq!(
            two_by_two(&["worker-1"], 2).verdict(),
            Verdict::Waiting {
                service: "worker-2".into(),
                what: "Dask worker host worker-2 has not registered".into()
            }
        );
        assert_eq!(
            two_by_two(&["worker-1", "worker-2"], 1).verdict(),
            Verdict::Waiting {
                service: "ipy-controller".into(),
                what: "1 of 2 ipyparallel engines registered".into()
            }
        );
    }

    #[test]
    fn a_stopped_or_missing_service_is_broken() {
        let mut r = two_by_two(&["worker-1", "worker-2"], 2);
        r.containers[3] = container("worker-2", "exited");
        assert!(matches!(
            r.verdict(),
            Verdict::Broken { service, container: Some(c) } if service == "worker-2" && c.state == "exited"
        ));
        r.containers.remove(3);
        assert_eq!(
            r.verdict(),
            Verdict::Broken {
                service: "worker-2".into(),
                container: None
            }
        );
    }
}
