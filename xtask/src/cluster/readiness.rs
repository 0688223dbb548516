//! When a cluster is ready: one rule, for both backends, for `up`,
//! `dist-test` and `test` (waiting for it) and `status` (showing it). Every
//! service runs, the Dask scheduler has every worker host with all its CPU
//! workers and its service worker, and the ipyparallel controller has every
//! engine. What has registered is seen from inside the cluster by
//! `probe.py` in the scheduler's container, which only reports what it sees
//! (JSON lines, read into [`Observation`]); the verdict is made here alone.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Cluster;
use crate::cluster::spec::{
    Observation, Phase, ServiceSpan, ServiceState, Size, CONTROLLER, READY_FILE, SCHEDULER,
};
use crate::exec;
use crate::interrupt;

/// Let the tests started on the cluster whose results folder is `results` run.
/// The cluster did not get ready (a service ended, or the deadline came):
/// the environment failed, not a test (a run's verdict "infrastructure").
#[derive(Debug)]
pub struct NotReady(pub String);

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotReady {}

pub fn declare_ready(results: &Path) -> Result<()> {
    let path = results.join(READY_FILE);
    fs::write(&path, "ready\n").with_context(|| format!("writing {}", path.display()))
}

/// The spans of the services, marked as they are seen.
#[derive(Debug, Default)]
struct Marks(Vec<ServiceSpan>);

impl Marks {
    fn span(&mut self, service: &str) -> &mut ServiceSpan {
        if let Some(i) = self.0.iter().position(|s| s.service == service) {
            return &mut self.0[i];
        }
        self.0.push(ServiceSpan {
            service: service.to_string(),
            running: None,
            ready: None,
        });
        self.0.last_mut().expect("just pushed")
    }

    fn see(&mut self, now: &Readiness, probed: bool, at: f64) {
        for s in now.services.iter().filter(|s| s.phase == Phase::Running) {
            self.span(&s.service).running.get_or_insert(at);
        }
        // Only names of the cluster's size: a host the probe saw that the
        // size does not have (another cluster's worker) marks nothing.
        let hosts = now.seen.ready_hosts(now.size.worker_cpus);
        let mut ready: Vec<String> = now
            .size
            .worker_hosts()
            .into_iter()
            .filter(|h| hosts.contains(h))
            .collect();
        let engines = now.size.engine_services();
        ready.extend(engines.into_iter().take(now.seen.engines as usize));
        if probed {
            ready.extend([SCHEDULER, CONTROLLER].map(String::from));
        }
        for service in ready {
            self.span(&service).ready.get_or_insert(at);
        }
    }
}

/// What the cluster looks like now, against what its size wants.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub size: Size,
    pub services: Vec<ServiceState>,
    pub seen: Observation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ready,
    /// A service ended, or does not exist: waiting will not help.
    Broken {
        service: String,
        status: String,
    },
    /// Still coming up: the service to blame, and what it lacks.
    Waiting {
        service: String,
        what: String,
    },
}

impl Readiness {
    pub fn service(&self, name: &str) -> Option<&ServiceState> {
        self.services.iter().find(|s| s.service == name)
    }

    fn hosts_in(&self) -> usize {
        let ready = self.seen.ready_hosts(self.size.worker_cpus);
        self.size
            .worker_hosts()
            .iter()
            .filter(|h| ready.contains(h))
            .count()
    }

    /// `dask worker hosts 1/2, ipyparallel engines 0/2`
    pub fn counts(&self) -> String {
        format!(
            "dask worker hosts {}/{}, ipyparallel engines {}/{}",
            self.hosts_in(),
            self.size.workers,
            self.seen.engines.min(self.size.engines),
            self.size.engines
        )
    }

    /// The rule: every service running, then every worker host, then
    /// every engine.
    pub fn verdict(&self) -> Verdict {
        for service in self.size.services() {
            match self.service(&service) {
                Some(s) if s.phase == Phase::Running => {}
                Some(s) if s.phase == Phase::Starting => {
                    return Verdict::Waiting {
                        what: format!("{service} is not running yet ({})", s.status),
                        service,
                    }
                }
                Some(s) => {
                    return Verdict::Broken {
                        status: s.status.clone(),
                        service,
                    }
                }
                None => {
                    return Verdict::Broken {
                        service,
                        status: "not there (was the cluster started?)".into(),
                    }
                }
            }
        }
        let ready = self.seen.ready_hosts(self.size.worker_cpus);
        let missing = self
            .size
            .worker_hosts()
            .into_iter()
            .find(|h| !ready.contains(h));
        match missing {
            Some(h) => Verdict::Waiting {
                what: format!("Dask worker host {h} has not registered"),
                service: h,
            },
            None if self.seen.engines < self.size.engines => Verdict::Waiting {
                service: CONTROLLER.into(),
                what: format!(
                    "{} of {} ipyparallel engines registered",
                    self.seen.engines, self.size.engines
                ),
            },
            None => Verdict::Ready,
        }
    }
}

/// Wait, bounded, until the verdict is ready. On failure, name what is
/// missing and show its last log lines. What has registered comes from one
/// `probe.py watch` for the whole wait (a line at every change; a `docker
/// exec` per look costs about 0.3 s of CPU, which the services starting
/// beside it need); whether every service still runs, from the backend
/// once a second. `first`: what a probe saw just now (after a restart), so
/// that a cluster ready at once needs no watcher.
pub fn wait_ready<C: Cluster + ?Sized>(
    cluster: &C,
    timeout: Duration,
    first: Option<Observation>,
) -> Result<Vec<ServiceSpan>> {
    let size = cluster.definition().size;
    let deadline = Instant::now() + timeout;
    let probed_before = first.is_some();
    let mut seen = first.unwrap_or_default();
    let mut watcher: Option<exec::Lines> = None;
    let mut marks = Marks::default();
    let mut probed = probed_before;
    loop {
        interrupt::check()?;
        let services = cluster.services()?;
        let scheduler_runs = services
            .iter()
            .any(|s| s.service == SCHEDULER && s.phase == Phase::Running);
        let now = Readiness {
            size,
            services,
            seen: seen.clone(),
        };
        crate::live::status(now.counts(), None);
        marks.see(&now, probed, crate::clock::unix_now());
        let verdict = now.verdict();
        if watcher.is_none() && scheduler_runs && verdict != Verdict::Ready {
            let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
            watcher = cluster.watch(left)?;
        }
        match verdict {
            Verdict::Ready => return Ok(marks.0),
            Verdict::Broken { service, status } => {
                return Err(NotReady(format!(
                    "service {service} is {status} before the cluster was ready; its last log lines:\n{}",
                    cluster.last_lines(&service, 20)
                ))
                .into())
            }
            Verdict::Waiting { service, what } if Instant::now() >= deadline => {
                return Err(NotReady(format!(
                    "the cluster was not ready after {} s: {what}; last log lines of {service}:\n{}",
                    timeout.as_secs(),
                    cluster.last_lines(&service, 20)
                ))
                .into())
            }
            Verdict::Waiting { .. } => {}
        }
        // News from the watcher, or a second passes and the services are
        // looked at again.
        let Some(w) = watcher.as_mut() else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        if let Some(line) = w.next(Duration::from_secs(1)) {
            seen = serde_json::from_str(&line)
                .with_context(|| format!("reading the readiness probe's line {line:?}"))?;
            probed = true;
            continue;
        }
        if let Some(status) = w.exited()? {
            // Its lifetime is up (and so is ours), or the scheduler went
            // (the services say so next); anything else is the probe failing.
            if !status.success() && scheduler_still_runs(cluster)? {
                bail!(
                    "the readiness probe in the scheduler's container failed ({status}): {}",
                    w.stderr().lines().last().unwrap_or("no output")
                );
            }
            watcher = None;
        }
    }
}

fn scheduler_still_runs<C: Cluster + ?Sized>(cluster: &C) -> Result<bool> {
    Ok(cluster
        .services()?
        .iter()
        .any(|s| s.service == "scheduler" && s.phase == Phase::Running))
}

/// Why the cluster cannot run the next test, if it cannot: a service that
/// is not running, or workers and engines that are no longer registered.
pub fn unusable<C: Cluster + ?Sized>(cluster: &C) -> Option<String> {
    let services = match cluster.services() {
        Ok(s) => s,
        Err(e) => return Some(format!("its services cannot be listed: {e:#}")),
    };
    if let Some(s) = services.iter().find(|s| s.phase != Phase::Running) {
        return Some(format!(
            "service {} is not running ({})",
            s.service, s.status
        ));
    }
    let size = cluster.definition().size;
    let Some(seen) = cluster.observe() else {
        return Some("the scheduler does not answer".into());
    };
    let hosts = seen.ready_hosts(size.worker_cpus).len() as u32;
    if hosts < size.workers || seen.engines < size.engines {
        return Some(format!(
            "{hosts} of {} Dask worker hosts and {} of {} engines are registered",
            size.workers, seen.engines, size.engines
        ));
    }
    None
}

#[cfg(test)]
mod tests;
