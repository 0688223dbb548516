//! Bad input: one line saying what to fix, a non-zero exit, nothing written
//! and no cluster started.

use crate::common::*;

use std::fs;
use std::path::Path;

#[test]
fn no_client_no_engine_and_no_target_are_one_line_each() {
    let empty = std::env::temp_dir().join(format!("xtask-nopath-{}", std::process::id()));
    fs::create_dir_all(&empty).unwrap();
    let o = xtask_in(
        &root(),
        &["dist-test"],
        &[("PATH", empty.to_str().unwrap())],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("missing tools: docker: install Docker Engine"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let o = xtask_in(
        &root(),
        &["dist-test"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("the Docker engine is not reachable"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    if !engine_available() {
        return;
    }
    // target/ that cannot be written: here a file where the folder should be
    // (permission bits would not stop root, which CI runs as).
    let copy = std::env::temp_dir().join(format!("xtask-no-target-{}", std::process::id()));
    fs::create_dir_all(&copy).unwrap();
    fs::copy(root().join("dist-test.toml"), copy.join("dist-test.toml")).unwrap();
    fs::write(copy.join("target"), "not a folder").unwrap();
    let o = xtask_in(&copy, &["dist-test"], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("make target/ writable"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        fs::read_to_string(copy.join("target")).unwrap(),
        "not a folder",
        "target/ untouched"
    );
    let _ = fs::remove_dir_all(&copy);
    let _ = fs::remove_dir_all(&empty);
}

#[test]
fn bad_input_is_one_line_and_touches_nothing() {
    let engine = engine_available();
    // (arguments, TESTDATA_BASE_PATH, what the one line says)
    let cases = [
        (
            &["dist-test"][..],
            "/nonexistent/data",
            "TESTDATA_BASE_PATH=/nonexistent/data is not a folder",
        ),
        (
            &["--config", "/nonexistent.toml", "status"][..],
            "",
            "reading /nonexistent.toml",
        ),
    ];
    for (args, data, want) in cases {
        if !engine {
            continue; // the engine check comes first
        }
        let before = listing(&root().join("target/dist-test/runs"));
        let o = xtask_in(&root(), args, &[("TESTDATA_BASE_PATH", data)]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert_eq!(
            listing(&root().join("target/dist-test/runs")),
            before,
            "{args:?} wrote a run folder"
        );
    }
    // A config with an unknown key and a malformed one.
    let dir = std::env::temp_dir().join(format!("xtask-badcfg-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let good = fs::read_to_string(root().join("dist-test.toml")).unwrap();
    for (name, text, want) in [
        (
            "unknown.toml",
            good.replace("[cluster]\n", "[cluster]\nwrokers = 3\n"),
            "unknown field `wrokers`",
        ),
        (
            "malformed.toml",
            good.replace("[cluster]", "[cluster"),
            "is not valid",
        ),
    ] {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        let o = xtask(&["--config", p.to_str().unwrap(), "dist-test"]);
        let err = stderr(&o);
        assert!(!o.status.success());
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
    }
    let _ = fs::remove_dir_all(dir);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_unreadable_cluster_state_is_one_line_and_down_still_works() {
    if !engine_available() {
        return;
    }
    let checkout = other_checkout("unreadable-state");
    let state = checkout.join("target/dist-test/cluster/state.json");
    fs::create_dir_all(state.parent().unwrap()).unwrap();
    fs::write(&state, "2 2\n").unwrap(); // the size file's old format
    let o = xtask_in(&checkout, &["status"], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("is not a cluster state this xtask can read: run `cargo xtask down`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    let o = xtask_in(&checkout, &["down"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!state.exists(), "down removes the state it could not read");
    assert!(leftovers_of_checkout(&checkout).is_empty());
}

/// `--libertem`: an unknown version names the releases there are; a
/// downloaded sdist whose sha256 is not the one PyPI publishes is refused
/// and removed. One line each, before anything is built.
#[test]
fn a_release_that_does_not_exist_or_was_tampered_with_is_one_line() {
    if !engine_available() {
        return;
    }
    let copy = std::env::temp_dir().join(format!("xtask-release-{}", std::process::id()));
    let sdists = copy.join("target/dist-test/sdist");
    fs::create_dir_all(&sdists).unwrap();
    fs::copy(root().join("dist-test.toml"), copy.join("dist-test.toml")).unwrap();

    let o = xtask_in(&copy, &["build", "--libertem", "9.9.9"], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("libertem 9.9.9 is not on PyPI"), "{err}");
    assert!(err.contains("0.15.2, ") && err.contains("0.16.0"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let tampered = sdists.join("libertem-0.14.2.tar.gz");
    fs::write(&tampered, b"not the release").unwrap();
    let o = xtask_in(&copy, &["build", "--libertem", "0.14.2"], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("refused")
            && err.contains("libertem-0.14.2.tar.gz")
            && err.contains("PyPI publishes"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!tampered.exists(), "the tampered file is removed");
    assert!(!sdists.join("libertem-0.14.2").exists(), "nothing unpacked");
    let label = format!(
        "label=org.libertem.dist-test.checkout={}",
        checkout_id(&copy)
    );
    let images = docker(&["image", "ls", "--quiet", "--all", "--filter", &label]);
    assert_eq!(images.trim(), "", "nothing built");
    assert!(leftovers_of_checkout(&copy).is_empty());
    let _ = fs::remove_dir_all(&copy);
}
