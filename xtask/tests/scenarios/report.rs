//! A real run's report.html, opened in headless Chromium from Debian's
//! packages (an image built on the harness's own base, see
//! tests/chromium/Dockerfile): it renders with no console message, its
//! timeline has a lane for every service and every test of the run, and
//! each test's history chart has one point per run in the history. The
//! run passes three tests twice (`--repeat 2`), so that the table and the
//! merged JUnit file have every execution.

use crate::common::*;

use std::fs;
use std::path::Path;
use std::process::Command;

use xtask::summary::Summary;

/// `<checkout>:chromium-<hash of the Dockerfile and the base>`, built once.
fn chromium_image(base: &str) -> String {
    let dockerfile = root().join("xtask/tests/chromium/Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    let base_id = docker(&["image", "inspect", "--format", "{{.Id}}", base]);
    let key = xtask::digest::sha256_bytes(format!("{text}\n{}", base_id.trim()).as_bytes());
    let checkout = checkout_id(&root());
    let tag = format!("{checkout}:chromium-{}", &key[..12]);
    let have = Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap();
    if have.status.success() {
        return tag;
    }
    let sh = xshell::Shell::new().unwrap();
    let clients = xtask::docker::find_clients(&sh).expect("a docker client");
    let builder = clients.builder.expect("a client that builds with BuildKit");
    let label = format!("{}={checkout}", xtask::CHECKOUT_LABEL);
    let o = Command::new(builder)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--quiet", "--tag", &tag, "--label", &label])
        .args(["--build-arg", &format!("BASE={base}")])
        .arg("--file")
        .arg(&dockerfile)
        .arg(dockerfile.parent().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "building {tag}: {}", stderr(&o));
    tag
}

/// Chromium, headless, on `page` in the run folder `dir` (read-only, no
/// network): the DOM after the page ran, and what it logged.
fn open_in_chromium(image: &str, dir: &Path, page: &str) -> (String, String) {
    let mount = format!("{}:/report:ro", dir.display());
    let url = format!("file:///report/{page}");
    let o = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--volume",
            &mount,
            image,
        ])
        .args(["chromium", "--headless", "--no-sandbox", "--disable-gpu"])
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "chromium: {}", stderr(&o));
    (stdout(&o), stderr(&o))
}

/// Chromium's screenshot of `page` in `dir`, into `out` (a PNG).
fn screenshot(image: &str, dir: &Path, page: &str, out: &Path) {
    let shots = out.parent().unwrap();
    fs::create_dir_all(shots).unwrap();
    let _ = Command::new("chmod").arg("777").arg(shots).status();
    let name = out.file_name().unwrap().to_string_lossy();
    let o = Command::new("docker")
        .args(["run", "--rm", "--network", "none"])
        .args(["--volume", &format!("{}:/report:ro", dir.display())])
        .args(["--volume", &format!("{}:/shots", shots.display())])
        .arg(image)
        .args(["chromium", "--headless", "--no-sandbox", "--disable-gpu"])
        .args(["--hide-scrollbars", "--window-size=1200,1500"])
        .arg(format!("--screenshot=/shots/{name}"))
        .arg(format!("file:///report/{page}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "chromium: {}", stderr(&o));
}

/// The console lines a page itself logged (Chromium's own pages may log too).
fn page_console(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") && l.contains("file:///report/"))
        .map(String::from)
        .collect()
}

/// The Chromium image, built on the base of the main checkout's release image.
fn chromium() -> String {
    let base = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.libertem.dist-test.base\"}}",
        &release_image(&root()),
    ]);
    chromium_image(base.trim())
}

const HANGING: &str = r#"import time

import distributed
import pytest


@pytest.mark.dist
def test_waits_forever_on_a_future(scheduler_addr):
    with distributed.Client(scheduler_addr) as client:
        client.submit(time.sleep, 365 * 86400, pure=False).result()
"#;

/// The reports of runs that did not pass: one whose test passed its
/// deadline (timed out), one whose worker was killed while that test
/// waited (infrastructure). Each renders with no console message and shows
/// its verdict, the traceback and the links to every process's stacks;
/// the timed-out one's screenshot goes to target/xtask-tests/ (docs/ has
/// one).
#[test]
#[ignore = "second tier: .ci/run runs it (cargo test -p xtask -- --ignored)"]
fn failed_runs_reports_render_in_chromium_with_verdicts_and_stacks() {
    if !engine_available() {
        return;
    }
    let copy = release_copy("hanging-report", true);
    let _copy = RemoveImageOnDrop(copy.clone());
    fs::write(copy.join("tests/test_hangs.py"), HANGING).unwrap();
    let copy_arg = copy.display().to_string();
    let args = smallest_dist_test(&[
        "--project",
        &copy_arg,
        "--test-timeout",
        "20",
        "--",
        "tests/test_hangs.py",
        "tests/io/datasets/test_raw.py::test_sum_on_dist",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Timed out.
    let o = xtask(&args);
    let timed_out = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{timed_out}");
    // Infrastructure: worker-1 killed while the test waits.
    let mut run = spawn(&args);
    let project = run.run_project(&root());
    run.wait_for("tests/test_hangs.py ", std::time::Duration::from_secs(600));
    let worker = running(&project, "worker-1").expect("worker-1 runs");
    docker(&["kill", &worker]);
    let (code, _, infra) = run.finish(std::time::Duration::from_secs(600));
    assert_eq!(code, 75, "{infra}");

    let image = chromium();
    for (err, verdict) in [(&timed_out, "timed out"), (&infra, "infrastructure")] {
        let dir = run_dir(err);
        let (dom, log) = open_in_chromium(&image, &dir, "report.html");
        let logged = page_console(&log);
        assert!(logged.is_empty(), "{verdict}: the page logged: {logged:?}");
        assert!(
            dom.contains(&format!("{verdict}: ")),
            "{verdict}: no verdict"
        );
        assert!(
            dom.contains("timed out after 20 s"),
            "{verdict}: no traceback"
        );
        assert!(dom.contains("stacks/worker-1.txt") || verdict == "infrastructure");
        assert!(
            dom.contains("stacks/tests.txt"),
            "{verdict}: no stacks link"
        );
        assert!(dom.contains("<h2>Environment</h2>"), "{verdict}");
        if verdict == "infrastructure" {
            assert!(dom.contains("worker-1 (exit code 137)"), "the dead service");
        }
    }
    let shot = root().join("target/xtask-tests/shots/report-timed-out.png");
    screenshot(&image, &run_dir(&timed_out), "report.html", &shot);
    assert!(fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));
}

#[test]
#[ignore = "second tier: .ci/run runs it (cargo test -p xtask -- --ignored)"]
fn a_runs_report_renders_in_chromium_with_every_service_and_test() {
    if !engine_available() {
        return;
    }
    // Three tests that need neither two workers nor the engines (LiberTEM's
    // dist suite assumes two worker hosts; this is the smallest cluster).
    let args = smallest_dist_test(&[
        "--repeat",
        "2",
        "--",
        "tests/io/datasets/test_dask_ds.py",
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xtask(&args);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("report: ") && last.ends_with("report.html"),
        "{err}"
    );
    let dir = run_dir(&err);
    let s: Summary = summary(&err);
    assert_eq!(s.repeat.as_ref().map(|r| r.ran), Some(2));
    assert!(s.tests.iter().all(|t| t.runs == 2), "{:?}", s.tests);

    let image = chromium();
    let console = page_console;
    // The check can fail: a page with an error in its script is caught.
    let control = dir.join("console-control.html");
    fs::write(
        &control,
        "<html><body><script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let (_, log) = open_in_chromium(&image, &dir, "console-control.html");
    let _ = fs::remove_file(&control);
    assert!(
        console(&log)
            .iter()
            .any(|l| l.contains("undefinedFunction")),
        "Chromium did not report a broken page's error:\n{log}"
    );
    let (dom, log) = open_in_chromium(&image, &dir, "report.html");
    let logged = console(&log);
    assert!(logged.is_empty(), "the page logged: {logged:?}");
    let timeline = s.timeline.as_ref().expect("a timeline");
    assert!(!timeline.services.is_empty() && !s.tests.is_empty());
    for service in &timeline.services {
        let lane = format!("data-lane=\"service:{}\"", service.service);
        assert!(dom.contains(&lane), "no lane for {}", service.service);
    }
    for t in &s.tests {
        assert!(
            dom.contains(&format!("data-lane=\"test:{}\"", t.id)),
            "no lane for {}",
            t.id
        );
    }
    // One point per run of the history that timed the test (the last 20).
    let history = fs::read_to_string(root().join("target/dist-test/history.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let window = &entries[entries.len().saturating_sub(20)..];
    for t in &s.tests {
        let runs = window
            .iter()
            .filter(|e| {
                e["tests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["id"] == t.id.as_str() && !x["median_s"].is_null())
            })
            .count();
        let row = dom
            .split(&format!("<tr data-test=\"{}\" ", t.id))
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap_or_else(|| panic!("no row for {}", t.id));
        assert!(
            row.contains(&format!("data-points=\"{runs}\"")),
            "{}: {runs} runs in the history:\n{row}",
            t.id
        );
    }
}
