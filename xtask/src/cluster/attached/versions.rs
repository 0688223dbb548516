//! What attach.py saw, and where the user's cluster differs from the
//! tests' side: one line per difference, the processes of one host that
//! differ alike told together.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One process's Python, packages and host.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Versions {
    pub python: String,
    pub host: String,
    pub libertem: Option<String>,
    pub dask: Option<String>,
    pub distributed: Option<String>,
    pub ipyparallel: Option<String>,
}

impl Versions {
    /// `(name, version)` of what must match, as this process has it.
    fn compared(&self, with_libertem: bool) -> Vec<(&'static str, Option<&str>)> {
        // Python by its minor version: cloudpickle carries code between
        // 3.14.0 and 3.14.2, not between 3.13 and 3.14.
        let minor = match self.python.match_indices('.').nth(1) {
            Some((at, _)) => &self.python[..at],
            None => self.python.as_str(),
        };
        let mut all = vec![
            ("Python", Some(minor)),
            ("dask", self.dask.as_deref()),
            ("distributed", self.distributed.as_deref()),
        ];
        if with_libertem {
            all.push(("LiberTEM", self.libertem.as_deref()));
            all.push(("ipyparallel", self.ipyparallel.as_deref()));
        }
        all
    }
}

/// attach.py's answer: the tests' side, the scheduler, each Dask worker by
/// address, each engine by id.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Seen {
    /// Why it could not ask, and whether asking again may help.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub waiting: bool,
    #[serde(default)]
    pub tests: Versions,
    pub scheduler: Option<Versions>,
    #[serde(default)]
    pub workers: BTreeMap<String, Versions>,
    #[serde(default)]
    pub engines: BTreeMap<String, Versions>,
}

impl Seen {
    /// The Dask workers' distinct hosts.
    pub fn worker_hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = self.workers.values().map(|v| v.host.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// Every difference from the tests' side, one line each: the scheduler
/// (Python, dask, distributed: a plain `dask scheduler` needs no LiberTEM),
/// the workers and the engines (all five).
pub fn mismatches<'s>(seen: &'s Seen) -> Vec<String> {
    // (what, host, package, version) -> processes
    let mut found: BTreeMap<(&str, &str, &str, String), u32> = BTreeMap::new();
    let mut look = |what: &'static str, v: &'s Versions, all: bool| {
        let want = seen.tests.compared(all);
        for ((name, has), (_, wanted)) in v.compared(all).into_iter().zip(want) {
            if has != wanted {
                let has = has.unwrap_or("no copy of it").to_string();
                *found.entry((what, v.host.as_str(), name, has)).or_default() += 1;
            }
        }
    };
    if let Some(s) = &seen.scheduler {
        look("the scheduler", s, false);
    }
    for v in seen.workers.values() {
        look("Dask worker", v, true);
    }
    for v in seen.engines.values() {
        look("ipyparallel engine", v, true);
    }
    found
        .into_iter()
        .map(|((what, host, name, has), n)| {
            let wanted = seen
                .tests
                .compared(true)
                .into_iter()
                .find(|(k, _)| *k == name);
            let wanted = wanted.and_then(|(_, v)| v).unwrap_or("none");
            let (who, runs) = match (what, n) {
                ("the scheduler", _) => (format!("the scheduler on {host}"), "runs"),
                ("Dask worker", 1) => (format!("a Dask worker on {host}"), "runs"),
                (_, 1) => (format!("an {what} on {host}"), "runs"),
                (_, n) => (format!("{n} {what}s on {host}"), "run"),
            };
            format!("{who} {runs} {name} {has}, the tests' container {name} {wanted}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(host: &str, distributed: &str) -> Versions {
        Versions {
            python: "3.14.0".into(),
            host: host.into(),
            libertem: Some("0.16.0".into()),
            dask: Some("2026.8.0".into()),
            distributed: Some(distributed.into()),
            ipyparallel: Some("9.2.0".into()),
        }
    }

    #[test]
    fn the_same_versions_everywhere_say_nothing() {
        let mut newer_patch = v("worker-2", "2026.8.0");
        newer_patch.python = "3.14.2".into();
        let mut seen = Seen {
            tests: v("tests", "2026.8.0"),
            scheduler: Some(v("scheduler", "2026.8.0")),
            ..Default::default()
        };
        seen.workers
            .insert("tcp://a:1".into(), v("worker-1", "2026.8.0"));
        seen.workers
            .insert("tcp://a:2".into(), v("worker-1", "2026.8.0"));
        seen.workers.insert("tcp://b:1".into(), newer_patch);
        seen.engines.insert("0".into(), v("ipy-1", "2026.8.0"));
        assert!(mismatches(&seen).is_empty());
        assert_eq!(seen.worker_hosts(), ["worker-1", "worker-2"]);
    }

    #[test]
    fn a_host_on_another_version_is_one_line_naming_both() {
        let mut seen = Seen {
            tests: v("tests", "2026.8.0"),
            ..Default::default()
        };
        for port in 1..=3 {
            let addr = format!("tcp://b:{port}");
            seen.workers.insert(addr, v("worker-2", "2025.1.0"));
        }
        seen.workers
            .insert("tcp://a:1".into(), v("worker-1", "2026.8.0"));
        let mut old_python = v("ipy-2", "2026.8.0");
        old_python.python = "3.11.2".into();
        old_python.libertem = None;
        seen.engines.insert("1".into(), old_python);
        let mut scheduler = v("sched", "2026.8.0");
        scheduler.libertem = None;
        seen.scheduler = Some(scheduler);
        assert_eq!(
            mismatches(&seen),
            [
                "3 Dask workers on worker-2 run distributed 2025.1.0, the tests' container \
                 distributed 2026.8.0",
                "an ipyparallel engine on ipy-2 runs LiberTEM no copy of it, the tests' container \
                 LiberTEM 0.16.0",
                "an ipyparallel engine on ipy-2 runs Python 3.11, the tests' container Python 3.14",
            ]
        );
    }
}
