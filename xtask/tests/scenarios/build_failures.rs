//! Builds that fail or are stopped, and builds repeated: each stops before
//! any cluster (or leaves none), says why, and leaves no pile of images. Each
//! scenario checks only its own project's images and its own clusters, so
//! they run side by side, as commands of one checkout would.

use crate::common::*;

use std::fs;
use std::time::Duration;

#[test]
fn an_unresolvable_requirement_stops_before_any_cluster() {
    if !engine_available() {
        return;
    }
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
    assert!(!err.contains("==> dist-test"), "no run started: {err}");
    assert!(!err.contains("results and logs"), "no run started: {err}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sigint_during_the_build_tears_down() {
    if !engine_available() {
        return;
    }
    let copy = edited_release("interrupted-build", "interrupted build");
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
    let project = run.run_project(&root());
    // The project's editable install has started (its command line is
    // echoed): the runtime is shared with the release's, so the build has
    // about two seconds to go.
    run.wait_for("/opt/dist-test/project-site", Duration::from_secs(600));
    run.signal("INT", true);
    let (code, _, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, 130, "{err}");
    let s = summary(&err);
    assert!(
        s.phases.get("up").is_none(),
        "no cluster was started: {s:?}"
    );
    let left = leftovers_of_project(&project);
    assert!(
        left.is_empty(),
        "SIGINT during the build: left behind {left:?}"
    );
}

#[test]
#[ignore = "second tier: .ci/run runs it (cargo test -p xtask -- --ignored)"]
fn edit_and_rebuild_cycles_do_not_pile_up_images() {
    if !engine_available() {
        return;
    }
    let copy = fs::canonicalize(edited_release("edit-cycles", "edit 0")).unwrap();
    let label = format!(
        "label=org.libertem.dist-test.project={}",
        xtask::image::project_tag(&checkout_id(&root()), &copy, DEFAULT_PYTHON)
    );
    // The images of this project, dangling ones included.
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
        let copy = edited_release("edit-cycles", &format!("edit {cycle}"));
        let o = xtask(&["build", "-q", "--project", copy.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        counts.push(images());
    }
    eprintln!("the project's images after each of 3 edit-and-rebuild cycles: {counts:?}");
    assert_eq!(
        counts,
        [1, 1, 1],
        "each rebuild removes the image it replaced"
    );
}

#[test]
fn a_broken_dockerfile_line_fails_the_build_and_leaves_nothing() {
    if !engine_available() {
        return;
    }
    // A checkout of its own (the two-checkouts chain seeds and deletes
    // the second one while this runs beside it), with a project-stage line
    // the image cannot run.
    let copy = other_checkout("broken-dockerfile-checkout");
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
