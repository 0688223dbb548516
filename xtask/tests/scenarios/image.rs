//! The runtime and the image as built: hashes are enforced when the
//! runtime installs the requirements, and the host's CA bundle ends up in
//! no image layer and not in the runtime.

use crate::common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::tools::ca_bundle;
use xtask::workspace::{Location, Workspace};

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// The base the xtask builds on: make sure it exists, then name it.
fn base_image() -> String {
    let o = xtask(&["build", "-q"]);
    assert!(o.status.success(), "cargo xtask build: {}", stderr(&o));
    let ws = Workspace::load(&Location::new(None).unwrap()).unwrap();
    let configured = ws.config.image.base_for(DEFAULT_PYTHON);
    if run(Command::new("docker").args(["image", "inspect", &configured]))
        .status
        .success()
    {
        return configured;
    }
    xtask::image::fallback_tag(&ws, DEFAULT_PYTHON).expect("a suite for the default Python")
}

/// `runtime.sh` on `requirements`, as the xtask runs it (the committed
/// requirements cannot be edited by hand: the xtask refuses a file whose
/// body does not match its header), into a volume of its own that is
/// removed after.
fn make_runtime(requirements: &str, name: &str) -> Output {
    let base = base_image();
    let dir = std::env::temp_dir().join(format!("xtask-runtime-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let reqs = dir.join("requirements.txt");
    fs::write(&reqs, requirements).unwrap();
    let volume = format!("xtask-test-runtime-{name}-{}", std::process::id());
    let ro = |from: &Path, to: &str| format!("{}:{to}:ro", from.display());
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--volume", &format!("{volume}:/venv")]);
    // The pinned uv for the image, as `cargo xtask build` (run by
    // base_image() above) left it in its context.
    let uv = root().join("target/dist-test/context/uv");
    let script = root().join("packaging/docker/runtime.sh");
    for mount in [
        ro(&uv, "/opt/uv/bin/uv"),
        ro(&reqs, "/tmp/dist-test/requirements.txt"),
        ro(&script, "/tmp/dist-test/runtime.sh"),
    ] {
        cmd.args(["--volume", &mount]);
    }
    if let Some(ca) = ca_bundle() {
        cmd.args(["--volume", &ro(&ca, "/run/secrets/ca_bundle")]);
    }
    cmd.args([&base, "sh", "/tmp/dist-test/runtime.sh", "test"]);
    let out = run(&mut cmd);
    let _ = run(Command::new("docker").args(["volume", "rm", "--force", &volume]));
    let _ = fs::remove_dir_all(&dir);
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
fn tampered_and_unhashed_lines_fail_the_runtime() {
    if !engine_available() {
        return;
    }
    let good = committed_entry("idna");
    assert!(good.contains("--hash=sha256:"), "{good}");

    // Every hash of the line changed: uv must refuse the download.
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
    let o = make_runtime(&(tampered + "\n"), "tampered");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "a tampered hash installed:\n{log}");
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
    let o = make_runtime(&format!("{version}\n"), "unhashed");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "an unhashed line installed:\n{log}");
    assert!(log.contains("hash"), "{log}");
    assert!(
        log.contains("dist-test: installing the pinned requirements failed"),
        "{log}"
    );
}

#[test]
fn the_ca_bundle_is_in_no_layer_and_not_in_the_runtime() {
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
    // The runtime read the bundle from a read-only mount: no copy of it
    // (nor of its host-only certificates) is in the runtime volume.
    let runtime = runtime_of(&image);
    let patterns = dir.join("patterns");
    let mut lines = host_only.join("\n");
    lines.push_str("\nBEGIN dist-test-no-such-line\n");
    fs::write(&patterns, lines).unwrap();
    let found = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volume",
        &format!("{}:/venv:ro", runtime.trim()),
        "--volume",
        &format!("{}:/patterns:ro", patterns.display()),
        &image,
        "sh",
        "-c",
        "find /venv -name 'ca_bundle*'; grep -rlF -f /patterns /venv || true",
    ]);
    assert!(found.trim().is_empty(), "the runtime holds: {found}");
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
