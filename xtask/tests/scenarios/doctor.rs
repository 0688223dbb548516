//! `cargo xtask doctor` names what would stop `dist-test`, with its fix.

use crate::common::engine_available;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

fn doctor(path: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args)
        .arg("doctor")
        .current_dir(crate::common::root())
        .env("PATH", path);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xtask-doctor-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A PATH holding only the docker client(s) and compose, nothing else.
fn docker_only_path(name: &str) -> Option<PathBuf> {
    let dir = temp(name);
    let docker = which::which("docker").ok()?;
    std::os::unix::fs::symlink(docker, dir.join("docker")).unwrap();
    if let Ok(compose) = which::which("docker-compose") {
        std::os::unix::fs::symlink(compose, dir.join("docker-compose")).unwrap();
    }
    Some(dir)
}

#[test]
fn missing_docker_client() {
    let empty = temp("empty");
    let o = doctor(empty.to_str().unwrap(), &[], &[]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("PROBLEM") && out.contains("docker: install Docker Engine"),
        "{out}"
    );
}

#[test]
fn engine_down() {
    let Some(path) = docker_only_path("engine") else {
        eprintln!("SKIPPED: no docker client here");
        return;
    };
    let o = doctor(
        path.to_str().unwrap(),
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        &[],
    );
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("PROBLEM engine") && out.contains("not reachable"),
        "{out}"
    );
}

#[test]
fn no_base_image_reports_the_debootstrap_route() {
    let Some(path) = docker_only_path("base") else {
        eprintln!("SKIPPED: no docker client here");
        return;
    };
    if !engine_available() {
        return;
    }
    // A base that exists nowhere and a fallback recipe never built; no
    // debootstrap on this PATH: the base will be built from Debian's
    // packages with debootstrap the xtask gets itself (or has got before).
    let cfg = path.join("config.toml");
    let text = fs::read_to_string(crate::common::root().join("dist-test.toml")).unwrap();
    let text = text
        .replace(
            "base = \"python:{python}-slim\"",
            "base = \"libertem-dist-test/absent:{python}\"",
        )
        .replace("\"3.14\" = \"forky\"", "\"3.14\" = \"nosuchsuite\"");
    fs::write(&cfg, text).unwrap();
    let o = doctor(
        path.to_str().unwrap(),
        &[],
        &["--config", cfg.to_str().unwrap()],
    );
    let out = stdout(&o);
    let route = out
        .lines()
        .find(|l| l.contains("base, Python 3.14"))
        .unwrap_or_else(|| panic!("no base line for Python 3.14:\n{out}"));
    assert!(route.starts_with("ok "), "{out}");
    assert!(
        route.contains("libertem-dist-test/absent:3.14 cannot be pulled")
            && route.contains(":nosuchsuite-py3.14-")
            && route.contains("will be built from Debian's packages with")
            && (route.contains("debootstrap 1.0") || route.contains("(fetched, verified)")),
        "{out}"
    );
}

#[test]
fn healthy_machine_passes() {
    if !engine_available() {
        return;
    }
    let o = doctor(&std::env::var("PATH").unwrap(), &[], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(!stdout(&o).contains("PROBLEM"), "{}", stdout(&o));
}
