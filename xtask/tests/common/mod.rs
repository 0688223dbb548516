//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The checkout the xtask under test was built in.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run the xtask binary in the checkout.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running the xtask binary")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Is a Docker engine reachable? Without one the Docker tests skip and say
/// so, unless CI is set: there a missing engine is a failure.
pub fn engine_available() -> bool {
    let up = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no Docker engine is reachable: the Docker tests cannot be skipped in CI"
        );
        eprintln!("SKIPPED: no Docker engine reachable; this test did not run");
    }
    up
}

/// Containers, networks and volumes that this project's runs created (they
/// carry its checkout label), as `ps of PROJECT`, for compose projects
/// starting with `prefix`.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        &["ps", "-a"][..],
        &["network", "ls"][..],
        &["volume", "ls"][..],
    ] {
        let o = Command::new("docker")
            .args(args)
            .args(["--filter", "label=org.libertem.dist-test.checkout"])
            .args(["--format", "{{.Label \"com.docker.compose.project\"}}"])
            .output()
            .expect("running docker");
        for p in String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|p| p.starts_with(prefix))
        {
            out.push(format!("{} of {p}", args[0]));
        }
    }
    out
}
