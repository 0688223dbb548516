//! The image as built: hashes are enforced when installing requirements,
//! and the host's CA bundle ends up in no layer.

mod common;
use common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xshell::Shell;
use xtask::tools::ca_bundle;
use xtask::workspace::{Location, Workspace};

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn workspace() -> Workspace {
    Workspace::load(&Location::new(None).unwrap()).unwrap()
}

/// The docker client that builds with BuildKit, as the xtask picks it.
fn buildkit_docker() -> PathBuf {
    let tools = xtask::tools::detect(&Shell::new().unwrap()).unwrap();
    tools
        .docker
        .builder()
        .expect("a docker client with BuildKit")
        .to_path_buf()
}

/// The base the xtask builds on: make sure it exists, then name it.
fn base_image() -> String {
    let o = xtask(&["build", "-q"]);
    assert!(o.status.success(), "cargo xtask build: {}", stderr(&o));
    let ws = workspace();
    let configured = ws.config.image.base_for(DEFAULT_PYTHON);
    if run(Command::new("docker").args(["image", "inspect", &configured]))
        .status
        .success()
    {
        return configured;
    }
    xtask::image::fallback_tag(&ws, DEFAULT_PYTHON).expect("a suite for the default Python")
}

/// Build the deps stage with `requirements` as requirements.txt.
fn build_deps(requirements: &str, name: &str) -> Output {
    let base = base_image();
    let ctx = std::env::temp_dir().join(format!("xtask-image-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&ctx);
    fs::create_dir_all(ctx.join("project")).unwrap();
    fs::write(ctx.join("requirements.txt"), requirements).unwrap();
    fs::copy(
        root().join("packaging/docker/probe.py"),
        ctx.join("probe.py"),
    )
    .unwrap();
    // The pinned uv for the image, as `cargo xtask build` (run by
    // base_image() below) left it in its own context.
    fs::copy(root().join("target/dist-test/context/uv"), ctx.join("uv")).unwrap();
    let mut cmd = Command::new(buildkit_docker());
    cmd.env("DOCKER_BUILDKIT", "1").args([
        "build",
        "--progress=plain",
        "--target",
        "deps",
        "--file",
    ]);
    cmd.arg(root().join("packaging/docker/Dockerfile"));
    cmd.args(["--build-arg", &format!("BASE_IMAGE={base}")]);
    if let Some(ca) = ca_bundle() {
        cmd.args(["--secret", &format!("id=ca_bundle,src={}", ca.display())]);
    }
    cmd.arg(&ctx);
    let out = run(&mut cmd);
    let _ = fs::remove_dir_all(&ctx);
    out
}

/// One real pinned line of the committed requirements (package, hashes).
fn committed_entry(package: &str) -> String {
    let text = fs::read_to_string(root().join(format!(
        "packaging/docker/requirements-py{DEFAULT_PYTHON}.txt"
    )))
    .unwrap();
    let start = text
        .find(&format!("\n{package}=="))
        .expect("package in requirements")
        + 1;
    text[start..]
        .lines()
        .take_while(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn tampered_and_unhashed_lines_fail_the_build() {
    if !engine_available() {
        return;
    }
    let good = committed_entry("idna");
    assert!(good.contains("--hash=sha256:"), "{good}");

    // Every hash of the line changed: pip must refuse the download.
    let tampered = good
        .lines()
        .map(|l| match l.split_once("--hash=sha256:") {
            Some((pre, rest)) => {
                // Reverse the 64 hex digits; keep a trailing line continuation.
                let (hex, tail) = rest.split_at(64);
                format!(
                    "{pre}--hash=sha256:{}{tail}",
                    hex.chars().rev().collect::<String>()
                )
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let o = build_deps(&(tampered + "\n"), "tampered");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a tampered hash built:\n{log}");
    assert!(log.contains("Hash mismatch"), "{log}");
    assert!(
        log.contains("dist-test: installing the pinned requirements failed"),
        "{log}"
    );

    // A line without any hash.
    let version = good
        .lines()
        .next()
        .unwrap()
        .trim_end_matches(" \\")
        .to_string();
    let o = build_deps(&format!("{version}\n"), "unhashed");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "an unhashed line built:\n{log}");
    assert!(log.contains("hash"), "{log}");
    assert!(
        log.contains("dist-test: installing the pinned requirements failed"),
        "{log}"
    );
}

#[test]
fn the_ca_bundle_is_in_no_layer() {
    if !engine_available() {
        return;
    }
    let Some(ca) = ca_bundle() else {
        eprintln!("SKIPPED: no CA bundle on this host to look for");
        return;
    };
    let o = xtask(&["build", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Certificates of the host's bundle that Debian's ca-certificates do not
    // ship (an intercepting proxy's CA, say): the image may not contain them.
    let host_only = host_only_certificates(&fs::read_to_string(&ca).unwrap());
    let dir = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("image.tar");
    let image = release_image(&root());
    assert!(run(Command::new("docker")
        .args(["save", "-o"])
        .arg(&tar)
        .arg(&image))
    .status
    .success());
    assert!(
        run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&dir))
            .status
            .success()
    );
    let _ = fs::remove_file(&tar);
    let mut layers = 0;
    for layer in walk(&dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "layer.tar"))
    {
        layers += 1;
        let names = run(Command::new("tar").arg("-tf").arg(&layer));
        let names = String::from_utf8_lossy(&names.stdout);
        assert!(
            !names.contains("run/secrets/ca_bundle"),
            "the secret's path is in {}",
            layer.display()
        );
        let content = run(Command::new("tar").arg("-xOf").arg(&layer));
        let content = String::from_utf8_lossy(&content.stdout);
        for cert in &host_only {
            assert!(
                !content.contains(cert.as_str()),
                "a host-only CA certificate is in {}",
                layer.display()
            );
        }
    }
    assert!(layers >= 2, "looked at {layers} layers");
    eprintln!(
        "checked {layers} layers for {} host-only certificate(s)",
        host_only.len()
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The first base64 line of each certificate in `bundle` that is not among
/// Debian's ca-certificates on this host.
fn host_only_certificates(bundle: &str) -> Vec<String> {
    let mut known = String::new();
    for e in walk(Path::new("/usr/share/ca-certificates")) {
        known.push_str(&fs::read_to_string(e).unwrap_or_default());
    }
    let mut out = Vec::new();
    let mut lines = bundle.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("-----BEGIN CERTIFICATE") {
            if let Some(first) = lines.next() {
                if first.len() > 40 && !known.contains(first) {
                    out.push(first.to_string());
                }
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
