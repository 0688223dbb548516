//! The stack file `docker stack deploy` reads: the same services as the
//! compose cluster, written out whole (a stack file has neither `extends`
//! nor `depends_on`), each worker and engine pinned to a node. Pure: serde
//! types written as JSON, which is YAML, from a [`StackSpec`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::cluster::pytest::{harness_env, HARNESS_DIR, PYTEST_CACHE, STACKS_DIR};
use crate::cluster::spec::{Size, CONTROLLER, SCHEDULER};

/// Everything the stack file says.
#[derive(Debug, Clone)]
pub struct StackSpec {
    pub image: String,
    pub size: Size,
    /// The swarm's nodes by id, the manager first: worker-N and
    /// ipy-worker-N go round the others, one per node while there are enough.
    pub nodes: Vec<String>,
    /// The manager's own folders, bound by the services that run there
    /// (the scheduler, the controller, the tests): the project's source,
    /// the folder the controller writes its connection files to (the
    /// engines get theirs through their nodes' engines, `connection.rs`)
    /// and the results.
    pub source: PathBuf,
    pub ipython: PathBuf,
    pub results: PathBuf,
    /// The volume that holds each node's copy of the source, which the
    /// workers and engines mount at /src (`nodes::send_source`).
    pub source_volume: String,
    /// What every node sees at the same path, in the one shared folder
    /// (docs/swarm.md): the detector data and LiberTEM's scratch folder.
    pub data: PathBuf,
    pub temp: PathBuf,
    /// The data holds a `temp_data` folder (LiberTEM before 0.16 writes
    /// there): the scratch folder is bound over it.
    pub legacy_temp: bool,
    /// pytest's cache for the project (on the manager).
    pub pytest_cache: PathBuf,
    /// packaging/docker, for the harness plugins (the tests run on the
    /// manager, where the xtask runs).
    pub harness: PathBuf,
    /// The runtime volume, which every service mounts at /venv read-only
    /// by name: each node has its own copy (nodes::distribute_runtime), so
    /// nothing under the manager's Docker data root is shared.
    pub runtime: String,
    /// What the workers' and engines' fork servers import first.
    pub preload: Vec<String>,
    /// Whether the fork servers import the preload (a kept cluster's, whose
    /// workers and engines restart after an edit).
    pub warm: bool,
    /// How long the tests' pytest waits for the ready file (timeouts.ready_s).
    pub ready_s: u64,
    /// The tests' command (pytest and its arguments), when the stack runs them.
    pub pytest: Option<Vec<String>>,
    /// The harness's limits for the tests (see `TestLimits::env`).
    pub tests_env: Vec<(&'static str, String)>,
    /// `KEY=VALUE` of the checkout label.
    pub label: String,
}

#[derive(Serialize)]
struct File {
    version: &'static str,
    services: BTreeMap<String, Service>,
    networks: BTreeMap<&'static str, Network>,
    /// The runtime and source volumes, made on every node before the deploy.
    volumes: BTreeMap<String, External>,
}

#[derive(Serialize)]
struct External {
    external: bool,
}

#[derive(Serialize)]
struct Network {
    driver: &'static str,
    internal: bool,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Service {
    image: String,
    hostname: String,
    init: bool,
    command: Vec<String>,
    environment: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'static str>,
    volumes: Vec<Bind>,
    deploy: Deploy,
}

#[derive(Serialize)]
struct Bind {
    #[serde(rename = "type")]
    kind: &'static str,
    source: String,
    target: &'static str,
    read_only: bool,
}

#[derive(Serialize)]
struct Deploy {
    endpoint_mode: &'static str,
    labels: BTreeMap<String, String>,
    placement: Placement,
    restart_policy: Restart,
}

#[derive(Serialize)]
struct Placement {
    constraints: Vec<String>,
}

#[derive(Serialize)]
struct Restart {
    condition: &'static str,
}

/// An engine starts once the controller has written its connection file,
/// as in the compose cluster (services.yml).
const ENGINE: &str = "until [ -s /ipython/profile_default/security/ipcontroller-engine.json ]; \
                      do sleep 0.1; done; \
                      exec python3 /opt/dist-test/warm_start.py engine -- \
                      ipengine --file=/ipython/profile_default/security/ipcontroller-engine.json \
                      --IPEngine.timeout=60 --IPEngine.enable_nanny=False";

impl StackSpec {
    /// The node a worker or engine with this 1-based number runs on: the
    /// nodes other than the manager in turn (the manager runs the
    /// scheduler, the controller and the tests), the manager only on a
    /// swarm of one.
    pub fn node_for(&self, i: u32) -> &str {
        let others = if self.nodes.len() > 1 {
            &self.nodes[1..]
        } else {
            &self.nodes[..]
        };
        &others[(i as usize - 1) % others.len()]
    }

    fn label(&self) -> BTreeMap<String, String> {
        let (k, v) = self.label.split_once('=').unwrap_or((&self.label, ""));
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    fn service(&self, name: &str, node: &str, command: &[&str]) -> Service {
        let bind = |from: &PathBuf, target: &'static str, read_only: bool| Bind {
            kind: "bind",
            source: from.display().to_string(),
            target,
            read_only,
        };
        let volume = |name: &str, target: &'static str| Bind {
            kind: "volume",
            source: name.to_string(),
            target,
            read_only: true,
        };
        let tests = name == "tests";
        // Only what runs on the manager binds the manager's folders.
        let on_manager = tests || name == SCHEDULER || name == CONTROLLER;
        let mut volumes = vec![
            bind(&self.data, "/data", true),
            bind(&self.temp, "/temp_data", false),
            volume(&self.runtime, "/venv"),
        ];
        if self.legacy_temp {
            volumes.push(bind(&self.temp, "/data/temp_data", false));
        }
        if on_manager {
            volumes.push(bind(&self.source, "/src", true));
        } else {
            volumes.push(volume(&self.source_volume, "/src"));
        }
        // The controller writes its files there, the tests and the
        // scheduler's probe (readiness) read the client's.
        if on_manager {
            volumes.push(bind(&self.ipython, "/ipython", false));
        }
        let mut environment = BTreeMap::from([
            ("TESTDATA_BASE_PATH", "/data".to_string()),
            ("TMP_TESTDATA_PATH", "/temp_data".to_string()),
            ("DIST_TEST_PRELOAD", self.preload.join(",")),
            // Every Python process's stacks on request (dist_test_stacks.py).
            ("DIST_TEST_STACKS", STACKS_DIR.to_string()),
            (
                "DIST_TEST_WARM",
                if self.warm { "1" } else { "0" }.to_string(),
            ),
        ]);
        if tests {
            volumes.push(bind(&self.results, "/results", false));
            volumes.push(bind(&self.pytest_cache, PYTEST_CACHE, false));
            volumes.push(bind(&self.harness, HARNESS_DIR, true));
            let scheduler = "tcp://scheduler:8786";
            let engines = self.size.engines;
            environment.extend(harness_env(scheduler, engines, self.ready_s, "/results"));
            environment.extend(self.tests_env.iter().cloned());
        }
        Service {
            image: self.image.clone(),
            hostname: name.to_string(),
            init: true,
            command: command.iter().map(|s| s.to_string()).collect(),
            environment,
            working_dir: tests.then_some("/src"),
            volumes,
            // Names resolve to the tasks themselves, not to a virtual IP:
            // Dask and ZeroMQ connect to many ports of one service. Nothing
            // restarts: a service that ended is a broken cluster.
            deploy: Deploy {
                endpoint_mode: "dnsrr",
                labels: self.label(),
                placement: Placement {
                    constraints: vec![format!("node.id == {node}")],
                },
                restart_policy: Restart { condition: "none" },
            },
        }
    }

    /// The stack file's text.
    pub fn text(&self) -> String {
        let manager = self.nodes[0].as_str();
        let mut services = BTreeMap::new();
        let mut add = |name: &str, node: &str, command: &[&str]| {
            services.insert(name.to_string(), self.service(name, node, command));
        };
        // Nothing is published: no one could see a dashboard.
        add(
            SCHEDULER,
            manager,
            &[
                "python3",
                "/opt/dist-test/probe.py",
                "serve",
                "--",
                "dask",
                "scheduler",
                "--port",
                "8786",
                "--no-dashboard",
            ],
        );
        add(
            CONTROLLER,
            manager,
            &[
                "ipcontroller",
                "--ip=0.0.0.0",
                "--location=ipy-controller",
                "--ping=500",
            ],
        );
        let cpus = self.size.worker_cpus.to_string();
        for (i, name) in (1..).zip(self.size.worker_hosts()) {
            let cmd = [
                "python3",
                "/opt/dist-test/warm_start.py",
                "worker",
                "--",
                "libertem-worker",
                "tcp://scheduler:8786",
                "--n-cpus",
                &cpus,
                "--cudas",
                "",
            ];
            add(&name, self.node_for(i), &cmd);
        }
        for (i, name) in (1..).zip(self.size.engine_services()) {
            add(&name, self.node_for(i), &["sh", "-c", ENGINE]);
        }
        if let Some(pytest) = &self.pytest {
            let pytest: Vec<&str> = pytest.iter().map(String::as_str).collect();
            add("tests", manager, &pytest);
        }
        // Internal: the services reach each other only, and nothing else
        // attaches them to the node's docker_gwbridge, whose address is
        // reachable from that node alone (a Dask worker would advertise it).
        let network = Network {
            driver: "overlay",
            internal: true,
            labels: self.label(),
        };
        let file = File {
            version: "3.8",
            services,
            networks: BTreeMap::from([("default", network)]),
            volumes: [&self.runtime, &self.source_volume]
                .into_iter()
                .map(|v| (v.clone(), External { external: true }))
                .collect(),
        };
        let json = serde_json::to_string_pretty(&file).expect("the stack file serialises");
        format!("# Generated by cargo xtask for `docker stack deploy`; not committed.\n{json}\n")
    }
}

#[cfg(test)]
mod tests;
