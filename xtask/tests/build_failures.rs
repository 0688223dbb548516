//! Builds that fail or are stopped, and builds repeated: each stops before
//! any cluster (or leaves none), says why, and leaves no pile of images.
//! Checks are scoped to the scenario's own checkout; the two that rebuild
//! this checkout's image (and count its images) run alone.

mod common;
use common::*;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

fn assert_nothing_left(scenario: &str) {
    let left = leftovers_of_checkout(&root());
    assert!(left.is_empty(), "{scenario}: left behind {left:?}");
}

#[test]
fn an_unresolvable_requirement_stops_before_any_cluster() {
    let Some(_shared) = docker_shared() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("xtask-unresolvable-{}", std::process::id()));
    fs::create_dir_all(dir.join("tests")).unwrap();
    fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"broken\"\nversion = \"0\"\ndependencies = [\"no-such-package-dist-test-xyz\"]\n",
    )
    .unwrap();
    let o = xtask(&["dist-test", "-q", "--project", dir.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("resolving the requirements failed"), "{err}");
    assert!(!err.contains("results and logs"), "no run started: {err}");
    assert_nothing_left("unresolvable requirement");
    let _ = fs::remove_dir_all(dir);
}

/// A copy of the pinned release that lives under target/ (so that its
/// requirements are resolved once, not every test run), with a comment
/// appended to one of its build files (hatch_build.py, not an input of its
/// requirements) so that the project stage rebuilds. A source edit would
/// not: the services mount the source.
fn edited_release(edit: &str) -> PathBuf {
    let copy = release_copy("edited-libertem", false);
    let build_file = copy.join("hatch_build.py");
    let mut text = fs::read_to_string(&build_file).unwrap();
    text.push_str(&format!("\n# {edit} {}\n", std::process::id()));
    fs::write(&build_file, text).unwrap();
    copy
}

#[test]
fn sigint_during_the_build_tears_down() {
    let Some(_alone) = docker_alone() else {
        return;
    };
    let copy = edited_release("interrupted build");
    let mut args = vec![
        "dist-test",
        "--workers",
        "1",
        "--engines",
        "1",
        "--verbose",
        "--project",
    ];
    args.push(copy.to_str().unwrap());
    let mut run = spawn(&args);
    // The project stage has started (its command line is echoed).
    run.wait_for("DEPS_IMAGE=", Duration::from_secs(400));
    run.signal("INT", true);
    let (code, _, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, 130, "{err}");
    let s = summary(&err);
    assert!(
        s.phases.get("up").is_none(),
        "no cluster was started: {s:?}"
    );
    assert_nothing_left("SIGINT during the build");
}

#[test]
fn edit_and_rebuild_cycles_do_not_pile_up_images() {
    let Some(_alone) = docker_alone() else {
        return;
    };
    let label = format!("label={}={}", xtask::CHECKOUT_LABEL, checkout_id(&root()));
    // This checkout's images, dangling ones included.
    let images = || {
        let mut ids: Vec<String> = docker(&[
            "image",
            "ls",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &label,
        ])
        .lines()
        .map(String::from)
        .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let mut counts = Vec::new();
    for cycle in 0..3 {
        let copy = edited_release(&format!("edit {cycle}"));
        let o = xtask(&["build", "-q", "--project", copy.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        counts.push(images());
    }
    eprintln!("this checkout's images after each of 3 edit-and-rebuild cycles: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[1] <= w[0]),
        "images pile up: {counts:?}"
    );
}

#[test]
fn a_broken_dockerfile_line_fails_the_build_and_leaves_nothing() {
    let Some(_shared) = docker_shared() else {
        return;
    };
    // The second checkout the concurrency scenario uses (its images are
    // built once), with a project-stage line the image cannot run.
    let copy = other_checkout("second-checkout");
    let dockerfile = copy.join("packaging/docker/Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    let broken = text.replace(
        "USER libertem\n",
        "RUN no-such-command-in-the-image\nUSER libertem\n",
    );
    assert_ne!(broken, text, "the Dockerfile has a `USER libertem` line");
    fs::write(&dockerfile, broken).unwrap();
    let o = xtask_in(
        &copy,
        &["-q", "dist-test", "--workers", "1", "--engines", "1"],
        &[],
    );
    fs::write(&dockerfile, text).unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("building the project image"), "{err}");
    assert!(
        err.contains("no-such-command-in-the-image"),
        "the failing line is shown: {err}"
    );
    let s = summary(&err);
    assert!(
        s.phases.get("up").is_none(),
        "no cluster was started: {s:?}"
    );
    let left = leftovers_of_checkout(&copy);
    assert!(
        left.is_empty(),
        "broken Dockerfile line: left behind {left:?}"
    );
}
