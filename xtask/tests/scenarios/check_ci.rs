//! `cargo xtask check-ci` with the real, pinned zizmor (fetched from PyPI
//! once): the committed workflow passes, and one unpinned action fails it
//! with the audit named. No Docker.

use crate::common::*;

use std::fs;
use std::sync::Mutex;

/// The first run fetches zizmor: one run at a time, so that two do not put
/// it together in the same folder.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn the_committed_workflow_has_no_findings() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = xtask(&["check-ci"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}\n{}", stdout(&o));
    assert!(
        err.contains("ci/dist-tests.yml: no zizmor findings"),
        "{err}"
    );
}

#[test]
fn an_unpinned_action_fails_with_the_audit_named() {
    let pinned = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1";
    let good = fs::read_to_string(root().join("ci/dist-tests.yml")).unwrap();
    assert!(
        good.contains(pinned),
        "the workflow no longer pins checkout so"
    );
    let dir = std::env::temp_dir().join(format!("xtask-check-ci-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("dist-tests.yml");
    fs::write(&bad, good.replacen(pinned, "actions/checkout@v4", 1)).unwrap();

    let o = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        xtask(&["check-ci", "--workflow", bad.to_str().unwrap()])
    };
    let (err, out) = (stderr(&o), stdout(&o));
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(1), "{err}\n{out}");
    let verdict: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(verdict.len(), 1, "{err}");
    assert!(
        verdict[0].ends_with(
            "dist-tests.yml has 1 zizmor finding(s): unpinned-uses; fix them \
             (zizmor's report is above, each audit is explained at https://docs.zizmor.sh/audits/) \
             and run `cargo xtask check-ci` again"
        ),
        "{err}"
    );
    // zizmor's own report, with the line it found.
    assert!(out.contains("error[unpinned-uses]"), "{out}");
    assert!(out.contains("uses: actions/checkout@v4"), "{out}");
}
