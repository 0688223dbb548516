//! When a cluster is ready: one verdict for `up`, `dist-test` (waiting for
//! it) and `status` (showing it).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xshell::Shell;

use super::{Cluster, Container, Size};
use crate::interrupt;

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
        Readiness::probe_with(cluster, sh, None)
    }

    /// As [`Readiness::probe`], with the engine count taken as `engines`
    /// when given: asking the controller means importing ipyparallel in it,
    /// about a second of CPU, which the services starting beside it need.
    fn probe_with(cluster: &Cluster, sh: &Shell, engines: Option<u32>) -> Result<Readiness> {
        let containers: Vec<Container> = cluster
            .containers(sh)?
            .into_iter()
            .filter(|c| !c.oneoff)
            .collect();
        let find = |service: &str| containers.iter().find(|c| c.service == service);
        let hosts = find("scheduler")
            .and_then(|c| cluster.probe(sh, c, "dask-hosts"))
            .map(|out| ready_hosts(&out, cluster.size.worker_cpus))
            .unwrap_or_default();
        let engines = engines.unwrap_or_else(|| {
            find("ipy-controller")
                .and_then(|c| cluster.probe(sh, c, "engines"))
                .and_then(|out| out.trim().parse().ok())
                .unwrap_or(0)
        });
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

impl Cluster {
    /// Poll, bounded, until the verdict is ready. On failure, name what is
    /// missing and show its last log lines. The Dask hosts are asked about
    /// on every poll; the engines at most every [`ENGINE_POLL`], and no more
    /// once all have registered (an engine that dies after that shows as a
    /// container that is not running).
    pub fn wait_ready(&self, sh: &Shell, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut engines = EngineCount::default();
        loop {
            interrupt::check()?;
            let known = engines.known(self.size.engines);
            let now = Readiness::probe_with(self, sh, known)?;
            if known.is_none() {
                engines.asked(now.engines);
            }
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
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Hosts whose CPU workers and service worker have all registered, from the
/// How often the engines are counted while waiting.
pub const ENGINE_POLL: Duration = Duration::from_secs(2);

/// The engine count while waiting: asked at most every [`ENGINE_POLL`],
/// and kept once complete.
#[derive(Debug, Default)]
struct EngineCount {
    last: Option<(Instant, u32)>,
}

impl EngineCount {
    /// The count to use without asking, if asking is not due.
    fn known(&self, want: u32) -> Option<u32> {
        match self.last {
            Some((_, n)) if n >= want => Some(n),
            Some((at, n)) if at.elapsed() < ENGINE_POLL => Some(n),
            _ => None,
        }
    }

    fn asked(&mut self, n: u32) {
        self.last = Some((Instant::now(), n));
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_asked_when_due_and_kept_once_complete() {
        let mut c = EngineCount::default();
        assert_eq!(c.known(2), None, "never asked");
        c.asked(1);
        assert_eq!(c.known(2), Some(1), "asked just now");
        c.last = Some((Instant::now() - ENGINE_POLL, 1));
        assert_eq!(c.known(2), None, "due again");
        c.last = Some((Instant::now() - ENGINE_POLL * 10, 2));
        assert_eq!(c.known(2), Some(2), "complete: kept");
    }

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
