//! The services run the project's live source (an editable install plus a
//! read-only mount), and the numba cache kept between runs never serves code
//! compiled from other source: after an edit to a jitted LiberTEM function,
//! the next run executes the new code, with no image rebuild. And a run
//! that names the remembered dist selection instead of collecting the suite
//! does so while nothing the selection was collected from has changed (an
//! edit inside a module of the source is not such a change; which changes
//! are, selection.rs's unit tests say). Two `dist-test`s of the smallest
//! cluster, on a copy of the pinned release with test modules of its own.

use crate::common::*;

use std::fs;
use std::path::Path;

/// Remove every test module under `dir` but `keep` (the conftest files and
/// helpers stay, so the suite still collects).
fn keep_only(dir: &Path, keep: &[&str]) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            keep_only(&path, keep);
        } else if name.starts_with("test_")
            && name.ends_with(".py")
            && !keep.contains(&name.as_str())
        {
            fs::remove_file(&path).unwrap();
        }
    }
}

const MORE: &str = r#"import pytest


@pytest.mark.dist
def test_workers_answer(dist_ctx):
    assert dist_ctx.executor.run_function(lambda: 41) == 41
"#;

#[test]
fn an_edit_runs_on_the_next_run_without_a_rebuild_and_the_selection_follows_the_tests() {
    if !engine_available() {
        return;
    }
    let copy = release_copy("live-source", true);
    // LiberTEM's own test modules go (its conftest stays): the tests of
    // the scenario's own, one run each, ask one worker host and compile
    // next to nothing.
    keep_only(&copy.join("tests"), &[]);
    fs::write(copy.join("tests/dist_test_caller.py"), LIVE_CALLER).unwrap();
    fs::write(copy.join("tests/test_dist_test_live_source.py"), LIVE_TEST).unwrap();
    fs::write(copy.join("tests/test_dist_test_more.py"), MORE).unwrap();
    let _guard = RemoveImageOnDrop(copy.clone());
    let project = copy.to_str().unwrap();
    let run = |passed: u64| {
        let mut args = smallest_dist_test(&["--project", project]);
        args.insert(0, "-q".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = xtask(&args);
        let err = stderr(&o);
        let s = summary(&err);
        assert_eq!(
            (o.status.code(), s.counts.passed, s.counts.failed),
            (Some(0), passed, 0),
            "{err}"
        );
        let how = s
            .pytest
            .as_ref()
            .expect("the harness's timeline")
            .selection
            .clone();
        (s, run_dir(&err), how)
    };
    // Fills the numba cache with the caller compiled against the original.
    let (first, _, how) = run(2);
    assert_eq!(how, "collected");
    edit_get_bbox_2d(&copy);
    let (s, dir, how) = run(2);
    assert_eq!(
        how,
        format!("named from run {}", first.run_id),
        "an edit inside a module of the source keeps the selection"
    );
    // No stage of the image was built: each writes its log into the run
    // folder. The build phase still makes the edited source's new, empty
    // numba cache volume (a second or so; more beside other scenarios).
    for log in ["build.log", "build.project.log", "build.image.log"] {
        assert!(
            !dir.join(log).exists(),
            "an edit needs no image rebuild: {log} was written"
        );
    }
    let build = s.phases.get("build").expect("a build phase");
    assert!(
        build < 30.0,
        "an edit needs no image rebuild: build took {build} s"
    );
}
