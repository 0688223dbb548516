//! `summary.json`, the machine-readable result of a run. Its schema is
//! documented in docs/summary-schema.md; [`SCHEMA`] goes up when a field
//! changes meaning or goes away (adding a field keeps it).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cluster::pytest::{PytestTimes, TestSpan};
use crate::cluster::spec::{ContainerState, DeadService, ServiceSpan};
use crate::junit::{Counts, SlowTest};
use crate::outcome::{Environment, RunVerdict, Snapshot};
use crate::phases::{Phases, Span};
use crate::repeats::causes::Cause;
use crate::repeats::TestResult;
use crate::testdata::TestData;

/// The version of the `summary.json` layout: 2 added the repeats, the
/// per-test table, the causes, the timeline and the report (a summary of
/// schema 1 reads with them empty); 3 the run's verdict (the exit codes
/// changed with it: 75 infrastructure, 124 timed out), each test's failure
/// and verdict, the snapshots taken at deadlines, the containers' states
/// and the environment (a summary of schema 1 or 2 reads with them empty).
pub const SCHEMA: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: u32,
    pub run_id: String,
    /// What was tested: the project folder (the unpacked sdist or a checkout).
    pub project: String,
    pub compose_project: String,
    /// `passed`, `failed`, `skipped`, `errors` and `skip_reasons`, at the top level.
    #[serde(flatten)]
    pub counts: Counts,
    /// pytest's own duration (its JUnit XML's `<testsuite time>`); `null`
    /// when pytest wrote no results.
    #[serde(default)]
    pub pytest_s: Option<f64>,
    /// Where pytest's time went, from the harness's timeline; `null` when
    /// pytest did not get to write one.
    #[serde(default)]
    pub pytest: Option<PytestTimes>,
    /// The ten slowest tests that ran, slowest first.
    #[serde(default)]
    pub slowest: Vec<SlowTest>,
    pub exit_code: i32,
    pub phases: Phases,
    pub dead_services: Vec<DeadService>,
    /// Why the run failed around pytest (build, readiness, a signal), if it did.
    pub error: Option<String>,
    /// Where `/data` came from: `TESTDATA_BASE_PATH`, the generated set, or none.
    #[serde(default)]
    pub data: Option<TestData>,
    /// The image the cluster ran, by its tag (`<checkout>:py<X.Y>-p<project hash>`).
    #[serde(default)]
    pub image: Option<String>,
    /// The Python the cluster ran (`3.14`); absent in summaries of runs
    /// before it was recorded.
    #[serde(default)]
    pub python: Option<String>,
    /// On a swarm: the node each service ran on (`<node id> <address>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, String>,
    /// On a swarm: nodes that were not Ready when the run ended
    /// (`<node id> <address>`); the services they ran are in `dead_services`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_nodes: Vec<String>,
    /// How the selection was repeated; `null` for one pass.
    #[serde(default)]
    pub repeat: Option<RepeatInfo>,
    /// Each test over every pass: runs, passes, failures, durations, verdict.
    #[serde(default)]
    pub tests: Vec<TestResult>,
    /// Failures and errors grouped by cause, most frequent first.
    #[serde(default)]
    pub causes: Vec<Cause>,
    /// When each phase, service and test ran.
    #[serde(default)]
    pub timeline: Option<RunTimeline>,
    /// The run's report, relative to the run folder (`report.html`).
    #[serde(default)]
    pub report: Option<String>,
    /// How the run ended: passed, failed, timed out, infrastructure, error
    /// or interrupted (`null` in summaries before schema 3).
    #[serde(default)]
    pub verdict: Option<RunVerdict>,
    /// What was kept of the cluster at each deadline passed.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// Every container of the cluster as the engine had it at the end.
    #[serde(default)]
    pub containers: Vec<ContainerState>,
    /// What the run ran on.
    #[serde(default)]
    pub environment: Option<Environment>,
}

/// `--repeat`, `--fresh`, `--until-failure`, and how many passes ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatInfo {
    pub asked: u32,
    pub ran: u32,
    pub fresh: bool,
    pub until_failure: bool,
}

/// The run's timeline (Unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTimeline {
    pub started: f64,
    pub phases: Vec<Span>,
    pub services: Vec<ServiceSpan>,
    /// Each pass's pytest: its start, the end of its collection, when it
    /// saw the cluster ready, its end.
    #[serde(default)]
    pub pytest: Vec<PytestSpan>,
    pub tests: Vec<PassSpan>,
}

/// One pass's pytest process (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PytestSpan {
    pub repeat: u32,
    pub started: f64,
    pub collected: Option<f64>,
    pub ready: Option<f64>,
    pub finished: Option<f64>,
}

/// One test's run in one pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassSpan {
    pub repeat: u32,
    #[serde(flatten)]
    pub test: TestSpan,
}

impl Summary {
    pub fn to_json(&self) -> String {
        // Serialising plain structs and strings cannot fail.
        serde_json::to_string_pretty(self).expect("summary serialises") + "\n"
    }

    pub fn from_json(text: &str) -> Result<Summary> {
        Ok(serde_json::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::{parse_junit, tests::JUNIT};

    fn summary() -> Summary {
        Summary {
            schema: SCHEMA,
            run_id: "20261125-143012-4242".into(),
            project: "/src/libertem".into(),
            compose_project: "ltdist-x-ab-r202611251430124242".into(),
            counts: parse_junit(JUNIT).unwrap().counts(),
            pytest_s: Some(40.1),
            pytest: Some(PytestTimes {
                collect_s: 6.5,
                waited_s: 0.0,
                late_s: 2.5,
                after_ready_s: Some(20.0),
                selection: "named from run 20261125-140000-1".into(),
            }),
            slowest: parse_junit(JUNIT).unwrap().slow_tests(10),
            exit_code: 1,
            phases: Phases::of(vec![
                ("build".into(), 1.0),
                ("up".into(), 2.004),
                ("ready".into(), 3.0),
                ("tests".into(), 4.0),
                ("teardown".into(), 0.5),
                ("flatten".into(), 0.25),
            ]),
            dead_services: vec![DeadService {
                service: "worker-2".into(),
                state: "Exited (137) 1 second ago".into(),
                exit_code: Some(137),
                last_lines: "a\n\"b\"".into(),
                oom_killed: false,
                ended: None,
                pass: None,
            }],
            error: Some("line1\n\"q\"".into()),
            data: Some(TestData {
                source: crate::testdata::Source::TestdataBasePath,
                path: "/home/me/libertem-data".into(),
            }),
            nodes: BTreeMap::new(),
            dead_nodes: vec![],
            image: Some("ltdist-x-ab:py3.14-p0123".into()),
            python: Some("3.14".into()),
            repeat: Some(RepeatInfo {
                asked: 5,
                ran: 5,
                fresh: false,
                until_failure: false,
            }),
            tests: vec![],
            causes: vec![],
            timeline: Some(RunTimeline::default()),
            report: Some("report.html".into()),
            verdict: Some(RunVerdict::Failed),
            snapshots: Vec::new(),
            containers: Vec::new(),
            environment: None,
        }
    }

    #[test]
    fn a_schema_2_summary_reads_with_no_verdict_and_nothing_kept() {
        let mut j: serde_json::Value = serde_json::from_str(&summary().to_json()).unwrap();
        let o = j.as_object_mut().unwrap();
        for k in ["verdict", "snapshots", "containers", "environment"] {
            o.remove(k);
        }
        o.insert("schema".into(), 2.into());
        let s = Summary::from_json(&j.to_string()).unwrap();
        assert_eq!((s.schema, s.verdict), (2, None));
        assert!(s.snapshots.is_empty() && s.containers.is_empty());
        let timed_out = r#""verdict": "timed out""#;
        let s3 = summary()
            .to_json()
            .replace(r#""verdict": "failed""#, timed_out);
        let s3 = Summary::from_json(&s3).unwrap();
        assert_eq!(s3.verdict, Some(RunVerdict::TimedOut));
    }

    #[test]
    fn summary_json_has_the_documented_keys() {
        let j: serde_json::Value = serde_json::from_str(&summary().to_json()).unwrap();
        assert_eq!(j["schema"], 3);
        assert_eq!(j["verdict"], "failed");
        assert_eq!(j["snapshots"], serde_json::json!([]));
        assert_eq!(j["repeat"]["asked"], 5);
        assert_eq!(j["report"], "report.html");
        assert_eq!(j["passed"], 11);
        assert_eq!(j["failed"], 2);
        assert_eq!(j["skipped"], 3);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["exit_code"], 1);
        assert_eq!(j["skip_reasons"][0]["reason"], "No K2IS test data");
        assert_eq!(j["skip_reasons"][0]["count"], 2);
        assert_eq!(j["pytest_s"], 40.1);
        assert_eq!(j["pytest"]["after_ready_s"], 20.0);
        assert_eq!(j["pytest"]["late_s"], 2.5);
        assert_eq!(j["pytest"]["selection"], "named from run 20261125-140000-1");
        assert_eq!(j["slowest"][0]["id"], "a::g");
        assert_eq!(j["slowest"][0]["secs"], 12.25);
        assert_eq!(j["slowest"].as_array().unwrap().len(), 10);
        assert_eq!(j["dead_services"][0]["exit_code"], 137);
        assert_eq!(j["error"], "line1\n\"q\"");
        assert_eq!(j["image"], "ltdist-x-ab:py3.14-p0123");
        assert_eq!(j["python"], "3.14");
        let phases = j["phases"].as_object().unwrap();
        assert_eq!(phases["up_s"], 2.0);
        // Every phase that ran, not only the ones known in advance.
        assert_eq!(phases["flatten_s"], 0.25);
        assert_eq!(phases.len(), 6);
    }

    #[test]
    fn summary_round_trips_with_phases_in_order() {
        let s = summary();
        let back = Summary::from_json(&s.to_json()).unwrap();
        let names: Vec<&str> = back.phases.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["build", "up", "ready", "tests", "teardown", "flatten"]
        );
        assert_eq!(back.phases.get("up"), Some(2.0));
        assert_eq!(back.counts, s.counts);
        assert_eq!((back.pytest_s, &back.slowest), (s.pytest_s, &s.slowest));
        assert_eq!(back.pytest, s.pytest);
        assert_eq!(back.dead_services, s.dead_services);
        assert_eq!(back.error, s.error);
    }

    #[test]
    fn a_schema_1_summary_still_reads() {
        let v1 = r#"{"schema": 1, "run_id": "20261125-231544-4242", "project": "/p",
            "compose_project": "c", "passed": 1, "failed": 0, "skipped": 1, "errors": 0,
            "skip_reasons": [{"reason": "collection skipped", "count": 1}], "pytest_s": 12.86,
            "pytest": null, "slowest": [], "exit_code": 1, "phases": {"build_s": 0.41},
            "dead_services": [], "error": null}"#;
        let s = Summary::from_json(v1).unwrap();
        assert_eq!((s.schema, s.counts.passed), (1, 1));
        assert!(s.repeat.is_none() && s.tests.is_empty() && s.timeline.is_none());
    }

    #[test]
    fn no_error_is_null() {
        let mut s = summary();
        s.error = None;
        s.dead_services.clear();
        let j: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert!(j["error"].is_null());
        assert_eq!(j["dead_services"], serde_json::json!([]));
    }
}
