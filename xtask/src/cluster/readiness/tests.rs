use std::collections::BTreeMap;

use super::*;

/// Every service the readiness marks and the timeline name is one the
/// backends create for the cluster's size (`Size::services`), whatever
/// the size and whatever else the probe saw.
#[test]
fn marked_services_are_the_sizes_own() {
    for (workers, engines, cpus) in [(1, 1, 1), (3, 1, 2), (2, 4, 2)] {
        let size = Size {
            workers,
            engines,
            worker_cpus: cpus,
        };
        let mut hosts = BTreeMap::new();
        for h in size
            .worker_hosts()
            .into_iter()
            .chain(["worker-9".to_string()])
        {
            hosts.insert(h, [cpus, 1]);
        }
        let now = all_running(size, hosts, engines + 1);
        let mut marks = Marks::default();
        marks.see(&now, true, 1.0);
        let mut marked: Vec<String> = marks.0.iter().map(|s| s.service.clone()).collect();
        let mut expected = size.services();
        marked.sort();
        expected.sort();
        assert_eq!(marked, expected, "{workers}x{engines}");
        assert!(
            marks.0.iter().all(|s| s.ready == Some(1.0)),
            "{:?}",
            marks.0
        );
    }
}

fn state(service: &str, phase: Phase) -> ServiceState {
    ServiceState {
        service: service.into(),
        phase,
        status: match phase {
            Phase::Running => "Up 5 seconds".into(),
            Phase::Starting => "Preparing 2 seconds ago".into(),
            Phase::Ended => "Exited (137) 1 second ago".into(),
        },
        exit_code: None,
    }
}

/// Every service of `size` running, the probe having seen `hosts` and
/// `engines`.
fn all_running(size: Size, hosts: BTreeMap<String, [u32; 2]>, engines: u32) -> Readiness {
    Readiness {
        size,
        services: size
            .services()
            .iter()
            .map(|s| state(s, Phase::Running))
            .collect(),
        seen: Observation { hosts, engines },
    }
}

fn two_by_two(hosts: &[(&str, [u32; 2])], engines: u32) -> Readiness {
    let size = Size {
        workers: 2,
        engines: 2,
        worker_cpus: 2,
    };
    let hosts = hosts.iter().map(|(h, n)| (h.to_string(), *n)).collect();
    all_running(size, hosts, engines)
}

#[test]
fn a_probe_line_reads_as_hosts_and_engines() {
    let line =
        r#"{"hosts": {"worker-2": [2, 1], "worker-1": [1, 1], "worker-3": [2, 0]}, "engines": 1}"#;
    let seen: Observation = serde_json::from_str(line).unwrap();
    assert_eq!(seen.engines, 1);
    assert_eq!(
        seen.ready_hosts(2),
        vec!["worker-2"],
        "all CPUs and a service worker"
    );
    assert_eq!(seen.ready_hosts(1), vec!["worker-1", "worker-2"]);
    let none: Observation = serde_json::from_str(r#"{"hosts": {}, "engines": 0}"#).unwrap();
    assert_eq!(none, Observation::default());
}

#[test]
fn ready_needs_every_host_with_its_cpus_and_every_engine() {
    let both = [("worker-1", [2, 1]), ("worker-2", [2, 1])];
    assert_eq!(two_by_two(&both, 2).verdict(), Verdict::Ready);
    assert_eq!(
        two_by_two(&both, 2).counts(),
        "dask worker hosts 2/2, ipyparallel engines 2/2"
    );
    assert_eq!(
        two_by_two(&[("worker-1", [2, 1]), ("worker-2", [1, 1])], 2).verdict(),
        Verdict::Waiting {
            service: "worker-2".into(),
            what: "Dask worker host worker-2 has not registered".into()
        }
    );
    assert_eq!(
        two_by_two(&both, 1).verdict(),
        Verdict::Waiting {
            service: "ipy-controller".into(),
            what: "1 of 2 ipyparallel engines registered".into()
        }
    );
}

#[test]
fn an_ended_or_missing_service_is_broken_and_a_starting_one_is_waited_for() {
    let both = [("worker-1", [2, 1]), ("worker-2", [2, 1])];
    let mut r = two_by_two(&both, 2);
    r.services[3] = state("worker-2", Phase::Starting);
    assert!(matches!(r.verdict(), Verdict::Waiting { service, .. } if service == "worker-2"));
    r.services[3] = state("worker-2", Phase::Ended);
    assert_eq!(
        r.verdict(),
        Verdict::Broken {
            service: "worker-2".into(),
            status: "Exited (137) 1 second ago".into()
        }
    );
    r.services.remove(3);
    assert!(matches!(r.verdict(), Verdict::Broken { service, .. } if service == "worker-2"));
}
