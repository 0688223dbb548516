//! The base image route when no base can be pulled and debootstrap is not
//! installed: the xtask fetches debootstrap itself, and refuses a download
//! whose sha256 is not the pinned one, leaving nothing half-made.

use crate::common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A .deb-shaped archive whose `usr/sbin/debootstrap` would leave a marker
/// file if it were ever run.
fn tampered_deb(dir: &Path, marker: &Path) -> Vec<u8> {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("usr/sbin")).unwrap();
    fs::create_dir_all(tree.join("usr/share/debootstrap/scripts")).unwrap();
    let script = tree.join("usr/sbin/debootstrap");
    fs::write(
        &script,
        format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display()),
    )
    .unwrap();
    let tarball = dir.join("data.tar.gz");
    assert!(Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tree)
        .arg("usr")
        .status()
        .unwrap()
        .success());
    let mut deb = b"!<arch>\n".to_vec();
    for (name, data) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("data.tar.gz", fs::read(&tarball).unwrap()),
    ] {
        deb.extend(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                data.len()
            )
            .bytes(),
        );
        deb.extend(&data);
        if data.len() % 2 == 1 {
            deb.push(b'\n');
        }
    }
    deb
}

/// `python3 -m http.server` on a free port of 127.0.0.1, serving `dir`.
struct Mirror {
    child: Child,
    url: String,
}

impl Mirror {
    fn serve(dir: &Path) -> Mirror {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 for a loopback HTTP server");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = first
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        Mirror {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// PATH without any folder that holds a debootstrap.
fn path_without_debootstrap() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("debootstrap").exists())
        .collect();
    std::env::join_paths(kept)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_tampered_debootstrap_download_is_refused_and_leaves_nothing() {
    if !engine_available() {
        return;
    }
    let work = std::env::temp_dir().join(format!("xtask-tampered-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let checkout = work.join("checkout");
    fs::create_dir_all(&checkout).unwrap();
    for item in ["dist-test.toml", "packaging"] {
        assert!(Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(&checkout)
            .status()
            .unwrap()
            .success());
    }
    let config = fs::read_to_string(checkout.join("dist-test.toml")).unwrap();
    let version = config_value(&config, "debootstrap_version");
    let marker = work.join("debootstrap-ran");
    let served = work.join("mirror");
    let pool = served.join("pool/main/d/debootstrap");
    fs::create_dir_all(&pool).unwrap();
    fs::write(
        pool.join(format!("debootstrap_{version}_all.deb")),
        tampered_deb(&work, &marker),
    )
    .unwrap();
    let mirror = Mirror::serve(&served);

    // A base that cannot be pulled (nothing listens on port 9), and the
    // mirror on loopback; everything else as committed.
    let config = config
        .replace(
            &format!("base = \"{}\"", config_value(&config, "base")),
            "base = \"127.0.0.1:9/no-such/base:{python}\"",
        )
        .replace(
            &format!(
                "fallback_mirror = \"{}\"",
                config_value(&config, "fallback_mirror")
            ),
            &format!("fallback_mirror = \"{}\"", mirror.url),
        );
    fs::write(checkout.join("dist-test.toml"), config).unwrap();

    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build"])
        .current_dir(root())
        .env("XTASK_WORKSPACE_ROOT", &checkout)
        .env("PATH", path_without_debootstrap())
        .output()
        .unwrap();
    drop(mirror);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a tampered debootstrap was accepted:\n{err}"
    );
    let url = format!("/pool/main/d/debootstrap/debootstrap_{version}_all.deb");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{err}");
    assert!(
        error_lines[0].contains("refusing http://127.0.0.1:")
            && error_lines[0].contains(&url)
            && error_lines[0].contains("its sha256 is"),
        "{err}"
    );
    assert!(!marker.exists(), "the tampered debootstrap was run");

    // Nothing half-made: no unpacked tool, no root file system, no base image.
    let target = checkout.join("target/dist-test");
    let tools: Vec<String> = fs::read_dir(target.join("tools"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("debootstrap"))
                .collect()
        })
        .unwrap_or_default();
    assert!(tools.is_empty(), "left under tools/: {tools:?}");
    assert!(
        !target.join("base-rootfs").exists(),
        "a root file system was left"
    );
    let tag = err
        .split("building ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fallback tag named in:\n{err}"));
    let image = Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .unwrap();
    assert!(!image.status.success(), "the base image {tag} was made");
    let _ = fs::remove_dir_all(&work);
}
