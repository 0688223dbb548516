//! Two checkouts side by side, and what one leaves when it is deleted. The
//! second is a scratch checkout under target/xtask-tests/ that this chain
//! makes, uses and deletes: nothing of it is left on the engine after.
//! (A run killed in its build, taken over by the next: reliability.rs.)

use crate::common::*;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn chain() {
    let second = other_checkout("second-checkout");
    let _kept = RemoveOnPanic::default();
    let start = Instant::now();
    let step = |name: &str| eprintln!("two checkouts: {name} at {:?}", start.elapsed());
    let main_project = the_main_job_beside_a_killed_run_of_another_checkout(&second, &_kept);
    step("the main job beside a second checkout's run, killed; down --all");
    a_deleted_checkouts_objects_go_with_any_clean(&second, &main_project);
    step("the second checkout deleted, clean in a third");
    // The main job's cluster, kept until here (`--keep`) as the main
    // checkout's kept cluster: `status` addresses it, `down` removes it.
    let o = xtask(&["status"]);
    assert!(stdout(&o).contains(&main_project), "{}", stdout(&o));
    let o = xtask(&["down"]);
    assert!(o.status.success(), "down: {}", stderr(&o));
    let left = leftovers_of_project(&main_project);
    assert!(left.is_empty(), "left {left:?}");
}

/// The main job on the default cluster (2 workers, 2 engines), two tests:
/// one through the Dask scheduler and both workers, one through the
/// ipyparallel controller and its engines. Beside it, the second checkout
/// starts its own (smallest) cluster, and its run is killed with SIGKILL,
/// which leaves no teardown: `down --all` there removes it (and again, and
/// `down`, with nothing to do). The main job passes and keeps its cluster
/// (`--keep`), for the `clean` below to leave alone; its compose project is
/// returned.
fn the_main_job_beside_a_killed_run_of_another_checkout(
    other: &Path,
    kept: &RemoveOnPanic,
) -> String {
    let mut main = spawn(&[
        "dist-test",
        "--keep",
        "--",
        "tests/io/datasets/test_raw.py::test_sum_on_dist",
        "tests/test_ipython.py",
    ]);
    let main_project = main.run_project(&root());
    kept.0.lock().unwrap().push(main_project.clone());
    a_killed_run_is_removed_by_down_all(other);
    // While its tests run, the cluster is closed: the services and the
    // tests container.
    main.wait_for("  ready", Duration::from_secs(600));
    closed_by_default(&main_project, 7);
    let (code, _, err) = main.finish(Duration::from_secs(900));
    assert_eq!(code, 0, "dist-test failed:\n{err}");
    let s = summary(&err);
    assert_eq!((s.counts.passed, s.counts.failed), (2, 0), "{s:?}");
    assert_eq!(s.compose_project, main_project);
    assert_eq!(s.schema, xtask::summary::SCHEMA);
    for phase in ["build", "up", "ready", "tests"] {
        assert!(s.phases.get(phase).is_some(), "no {phase} phase: {s:?}");
    }
    for svc in [
        "scheduler",
        "worker-1",
        "worker-2",
        "ipy-controller",
        "ipy-worker-1",
        "ipy-worker-2",
    ] {
        let log = run_dir(&err).join(format!("logs/{svc}.log"));
        assert!(log.is_file(), "no log for {svc}");
    }
    assert!(
        !run_dir(&err).starts_with(other),
        "the main job's results are the main checkout's: {err}"
    );
    main_project
}

/// Removes the compose projects it holds when a step panics: the main
/// job's cluster, kept with `--keep`, would keep running.
#[derive(Default)]
struct RemoveOnPanic(std::sync::Mutex<Vec<String>>);

impl Drop for RemoveOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                remove_compose_project(p);
            }
        }
    }
}

/// No port on the host, `/data` read-only, no Docker socket, a non-root
/// user: in every container of the cluster (at least `services` of them).
fn closed_by_default(project: &str, services: usize) {
    let label = format!("label=com.docker.compose.project={project}");
    let ids: Vec<String> = docker(&["ps", "-q", "--filter", &label])
        .lines()
        .map(String::from)
        .collect();
    assert!(ids.len() >= services, "the cluster's containers: {ids:?}");
    for id in &ids {
        let f = "{{json .HostConfig.PortBindings}}|{{json .NetworkSettings.Ports}}|{{.Config.User}}|{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}";
        let info = docker(&["inspect", "--format", f, id]);
        let parts: Vec<&str> = info.trim().split('|').collect();
        assert!(
            parts[0] == "{}" || parts[0] == "null",
            "ports bound on the host: {info}"
        );
        assert!(!parts[1].contains("HostIp"), "published: {info}");
        assert_eq!(parts[2], "libertem", "runs as {:?}: {info}", parts[2]);
        assert!(
            parts[3].contains(":/data:false"),
            "/data must be read-only: {info}"
        );
        assert!(
            !parts[3].contains("docker.sock"),
            "docker socket mounted: {info}"
        );
    }
}

/// A run killed with SIGKILL cannot tear down; `down --all` must, and
/// `down --all` and `down` again succeed with nothing to do.
fn a_killed_run_is_removed_by_down_all(other: &Path) {
    let args = smallest_dist_test(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = spawn_in(other, &args);
    let project = run.run_project(other);
    // Killed once every service of the smallest cluster has a container.
    let label = format!("label=com.docker.compose.project={project}");
    let containers = || docker(&["ps", "-aq", "--filter", &label]).lines().count();
    let deadline = Instant::now() + Duration::from_secs(300);
    while containers() < 4 {
        assert!(Instant::now() < deadline, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(500));
    }
    run.signal("KILL", false);
    let _ = run.finish(Duration::from_secs(30));
    assert!(containers() >= 4, "a killed run leaves its cluster behind");
    for _ in 0..2 {
        let o = xtask_in(other, &["down", "--all"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let left = leftovers_of_checkout(other);
        assert!(left.is_empty(), "down --all: left behind {left:?}");
    }
    let o = xtask_in(other, &["down"], &[]);
    assert!(o.status.success(), "down on nothing: {}", stderr(&o));
}

/// Every image reference and volume name on the engine.
fn engine_objects() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for r in docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).lines() {
        all.insert(format!("image {r}"));
    }
    for v in docker(&["volume", "ls", "--quiet"]).lines() {
        all.insert(format!("volume {v}"));
    }
    all
}

/// The images and volumes a `clean --dry-run` lists as an orphaned
/// checkout's (`  <what> <name> <size> (<owner>, orphaned)`).
fn listed_orphaned(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter(|l| l.ends_with(", orphaned)") && !l.trim_start().starts_with("cluster "))
        .filter_map(|l| {
            let kind = if l.contains("image ") {
                "image"
            } else {
                "volume"
            };
            let name = l
                .split_whitespace()
                .find(|w| w.starts_with("ltdist-") || w.starts_with("libertem-dist-"))?;
            Some(format!("{kind} {name}"))
        })
        .collect()
}

/// The second checkout, its images and numba caches on the engine, is
/// deleted as a clone is. `clean --dry-run` in a third checkout lists what
/// it left as orphaned; `clean` there removes exactly that: not the main
/// checkout's cluster still running (`--keep`), nor its images, nor an
/// image and a volume the harness did not make, nor an image made from a
/// container of the deleted checkout's image (it inherits its labels).
fn a_deleted_checkouts_objects_go_with_any_clean(second: &Path, main_project: &str) {
    let second_id = checkout_id(second);
    let pid = std::process::id();
    let foreign_volume = format!("xtask-test-foreign-{pid}");
    let foreign_image = format!("xtask-test-foreign:{pid}");
    let derived_image = format!("xtask-test-derived:{pid}");
    let _guard = CleanUpOnPanic {
        checkout: second.to_path_buf(),
        images: vec![foreign_image.clone(), derived_image.clone()],
        volumes: vec![foreign_volume.clone()],
    };
    docker(&["volume", "create", &foreign_volume]);
    let theirs = release_image(second);
    docker(&["tag", &theirs, &foreign_image]);
    let c = docker(&["create", &theirs, "true"]);
    docker(&["commit", c.trim(), &derived_image]);
    docker(&["rm", c.trim()]);
    let of_second = |objects: &BTreeSet<String>| -> BTreeSet<String> {
        objects
            .iter()
            .filter(|o| o.contains(&second_id))
            .cloned()
            .collect()
    };
    let before = of_second(&engine_objects());
    assert!(
        before.iter().any(|o| o.starts_with("image "))
            && before.iter().any(|o| o.starts_with("volume ")),
        "the second checkout made images and numba caches: {before:?}"
    );

    let _turn = cleans();
    fs::remove_dir_all(second).unwrap();
    let third = other_checkout("third-checkout");
    let dry = xtask_in(&third, &["clean", "--dry-run"], &[]);
    let plan = stdout(&dry);
    assert!(dry.status.success(), "clean --dry-run: {}", stderr(&dry));
    assert!(
        plan.contains("orphaned checkout(s) whose folder is gone"),
        "{plan}"
    );
    let listed = listed_orphaned(&plan);
    assert_eq!(
        listed
            .iter()
            .filter(|o| o.contains(&second_id))
            .cloned()
            .collect::<BTreeSet<_>>(),
        before,
        "every object of the deleted checkout listed as orphaned:\n{plan}"
    );
    let running_main = || {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={main_project}"),
        ])
        .lines()
        .count()
    };
    let main_services = running_main();
    assert!(main_services >= 6, "the main job's kept cluster runs");
    // The main checkout's image of the pinned release (the other scenarios'
    // own projects come and go meanwhile).
    let main_image = format!("image {}", release_image(&root()));
    assert!(engine_objects().contains(&main_image), "{main_image}");
    let o = xtask_in(&third, &["clean"], &[]);
    assert!(o.status.success(), "clean: {}", stderr(&o));
    let left = engine_objects();
    assert!(
        of_second(&left).is_empty(),
        "the deleted checkout's objects are gone: {:?}",
        of_second(&left)
    );
    assert!(
        leftovers_of_checkout(second).is_empty(),
        "{:?}",
        leftovers_of_checkout(second)
    );
    assert_eq!(
        running_main(),
        main_services,
        "clean touched the main job's cluster"
    );
    assert!(left.contains(&main_image), "{main_image} was removed");
    for kept in [
        format!("image {foreign_image}"),
        format!("image {derived_image}"),
        format!("volume {foreign_volume}"),
    ] {
        assert!(left.contains(&kept), "{kept} was removed");
    }
    docker(&["image", "rm", &foreign_image, &derived_image]);
    docker(&["volume", "rm", &foreign_volume]);
    let _ = fs::remove_dir_all(&third);
}
