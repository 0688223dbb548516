//! The Python runtime every service runs (`/venv`: the pinned packages and
//! their byte-code), made once per set of inputs straight into a volume by
//! `runtime.sh` in a container of the base image, and mounted read-only by
//! every service. It is never an image layer: a build neither exports it
//! nor copies it a second time (before, the dependency stage was streamed
//! out of BuildKit into `docker import` and then copied into a volume: 30 s
//! of a cold build's 119 here). A volume is also a plain directory of the
//! host's file system: on fuse-overlayfs (this project's CI machines) a
//! directory listing can come back incomplete when many processes start at
//! once, and a Python that misses a package there never looks again.
//!
//! One volume per key, `libertem-dist-runtime-<key>`, shared by every
//! checkout on the engine: the key is what the runtime is made from (the
//! base image, the requirements, `runtime.sh` and uv), so checkouts with the
//! same dependency set use one volume and a second checkout costs only its
//! project image. The engine is the owner of what is shared: one process
//! makes a runtime at a time, the one that created the maker container
//! `<volume>-make` (a name exists once on an engine), and the others wait for
//! it to end and use what it made. A volume counts only once its script
//! finished (its key written last into the volume, checked once per checkout
//! and then remembered in `target/dist-test/runtime.json`): an interrupted
//! one is made again. A volume no image of any checkout runs with any more
//! is removed by the checkout that used it last, once no container uses it
//! (Docker refuses one a container mounts), and by `clean`. uv's download
//! cache is one shared volume too. Called with the checkout lock held.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkout::{self, runs};
use crate::digest::{sha256_bytes, sha256_file};
use crate::docker::{label_filter, Docker, OneShot, LONG};
use crate::downloads;
use crate::fsx;
use crate::labels::{IMAGE_RUNTIME_LABEL, RUNTIME_LABEL};
use crate::tools;
use crate::workspace::Workspace;

/// The shared runtime volumes' names: this and their key.
pub const PREFIX: &str = "libertem-dist-runtime-";

/// uv's download cache, shared by every runtime made on the engine.
pub const UV_CACHE: &str = "libertem-dist-uv-cache";

/// What a runtime is made from.
pub struct Inputs<'a> {
    /// The base image's id.
    pub base_id: &'a str,
    /// The base image's reference, to run.
    pub base: &'a str,
    /// The requirements' body (what uv installs).
    pub requirements: &'a Path,
    /// The image's uv.
    pub uv: &'a Path,
}

/// The script that makes a runtime.
fn script(ws: &Workspace) -> PathBuf {
    ws.docker_dir().join("runtime.sh")
}

/// What a runtime is made from, as a short digest: the base, the
/// requirements, the script and uv (by its pin: hashing its 40 MB program
/// on every build costs more than the rest of a no-change build).
fn key(script: &Path, inputs: &Inputs) -> Result<String> {
    let mut text = format!("base {}\n{}", inputs.base_id, downloads::UV.requirement());
    for file in [inputs.requirements, script] {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        text.push_str(&format!("{} {name}\n", sha256_file(file)?));
    }
    Ok(sha256_bytes(text.as_bytes())[..12].to_string())
}

fn name_for(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// The shared runtimes this checkout has used, each checked complete.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    complete: Vec<String>,
}

impl Record {
    fn add(&mut self, name: &str) {
        if !self.complete.iter().any(|n| n == name) {
            self.complete.push(name.to_string());
        }
    }
}

fn record_path(ws: &Workspace) -> PathBuf {
    ws.target.join("runtime.json")
}

fn read_record(ws: &Workspace) -> Record {
    fs::read_to_string(record_path(ws))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_record(ws: &Workspace, record: &Record) -> Result<()> {
    let text = serde_json::to_string_pretty(record)? + "\n";
    fsx::write_atomic(&record_path(ws), text.as_bytes())
}

/// The shared runtimes this checkout has used (made or checked).
pub fn used(ws: &Workspace) -> Vec<String> {
    read_record(ws).complete
}

/// Make sure the runtime of `inputs` exists and is complete, and name its
/// volume. `log` gets the script's output.
pub fn ensure(docker: &Docker, ws: &Workspace, inputs: &Inputs, log: &Path) -> Result<String> {
    let key = key(&script(ws), inputs)?;
    let name = name_for(&key);
    let mut record = read_record(ws);
    if record.complete.contains(&name) && docker.volume_exists(&name) {
        return Ok(name);
    }
    let maker = maker_name(&name);
    // Each round ends with the runtime complete, or with another process's
    // maker gone (its runtime complete, or failed: then this one tries).
    for _ in 0..3 {
        if docker.volume_exists(&name) && marked_complete(docker, ws, inputs.base, &name, &key) {
            record.add(&name);
            write_record(ws, &record)?;
            return Ok(name);
        }
        if docker.container_exists(&maker) {
            docker.ui().say(&format!(
                "runtime {key}: another checkout is making it ({maker}); waiting for it"
            ));
            docker.wait_for_exit(&maker, LONG);
            continue;
        }
        say_making(inputs, &name, log)?;
        match make(docker, ws, inputs, &key, log) {
            Ok(()) => {
                record.add(&name);
                write_record(ws, &record)?;
                return Ok(name);
            }
            // Another process took the maker's name first.
            Err(_) if docker.container_exists(&maker) => continue,
            Err(e) => {
                docker.volume_rm(&name);
                return Err(e);
            }
        }
    }
    anyhow::bail!(
        "the runtime {name} was not completed by the processes that made it; see {}",
        log.display()
    )
}

fn say_making(inputs: &Inputs, name: &str, log: &Path) -> Result<()> {
    let pins = fs::read_to_string(inputs.requirements)?
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .count();
    crate::live::status(
        format!("runtime: {pins} pinned packages (uv) into volume {name}"),
        Some(log),
    );
    Ok(())
}

/// Does the volume say its script finished, for this key?
fn marked_complete(docker: &Docker, ws: &Workspace, base: &str, name: &str, key: &str) -> bool {
    let one = OneShot {
        image: base,
        user: "0",
        volumes: vec![format!("{name}:/venv:ro")],
        labels: checkout::helper_labels(ws),
        command: ["cat", "/venv/.dist-test-runtime"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    docker
        .one_shot(&one, None, crate::docker::QUERY_LONG)
        .is_ok_and(|out| out.trim() == key)
}

/// The container that makes runtime `name`: its name is the lock.
fn maker_name(name: &str) -> String {
    format!("{name}-make")
}

/// Run `runtime.sh` into the volume of `key` (made if missing, emptied by
/// the script) in its maker container.
fn make(docker: &Docker, ws: &Workspace, inputs: &Inputs, key: &str, log: &Path) -> Result<()> {
    let name = &name_for(key);
    let maker = maker_name(name);
    let label = format!("{}=runtime", crate::labels::SHARED_LABEL);
    docker.volume_create(name, &[label])?;
    let ro = |from: &Path, to: &str| format!("{}:{to}:ro", from.display());
    let mut volumes = vec![
        format!("{name}:/venv"),
        ro(inputs.uv, "/opt/uv/bin/uv"),
        ro(inputs.requirements, "/tmp/dist-test/requirements.txt"),
        ro(&script(ws), "/tmp/dist-test/runtime.sh"),
        // uv's download cache: a second runtime (another Python, new
        // requirements) fetches only what is new.
        format!("{}:/root/.cache/uv", uv_cache(docker)?),
    ];
    // TLS to PyPI may be intercepted: the host's CA bundle, for this
    // container only.
    if let Some(bundle) = tools::ca_bundle() {
        volumes.push(ro(&bundle, "/run/secrets/ca_bundle"));
    }
    let one = OneShot {
        name: Some(&maker),
        image: inputs.base,
        user: "0",
        volumes,
        env: tools::proxy_env(),
        labels: checkout::helper_labels(ws),
        command: ["sh", "/tmp/dist-test/runtime.sh", key]
            .map(String::from)
            .to_vec(),
        online: true,
        ..Default::default()
    };
    docker
        .one_shot(&one, Some(log), LONG)
        .map(drop)
        .with_context(|| {
            format!(
                "making the Python runtime (volume {name}); last lines of {}:\n{}",
                log.display(),
                crate::exec::tail_file(log, 25)
            )
        })
}

/// uv's download cache, a volume shared by every checkout.
fn uv_cache(docker: &Docker) -> Result<String> {
    if !docker.volume_exists(UV_CACHE) {
        let label = format!("{}=uv-cache", crate::labels::SHARED_LABEL);
        docker.volume_create(UV_CACHE, &[label])?;
    }
    Ok(UV_CACHE.to_string())
}

/// The runtime volumes the images of every checkout run with.
pub fn wanted(docker: &crate::docker::Docker) -> Result<Vec<String>> {
    run_with(docker, format!("label={}", crate::labels::CHECKOUT_LABEL))
}

/// The runtime volumes the images of checkout `id` run with.
pub fn of_checkout(docker: &crate::docker::Docker, id: &str) -> Vec<String> {
    run_with(docker, label_filter(crate::labels::CHECKOUT_LABEL, id)).unwrap_or_default()
}

/// The runtime volumes of the images that `filter` lists (dangling too).
fn run_with(docker: &crate::docker::Docker, filter: String) -> Result<Vec<String>> {
    Ok(docker
        .images(&[filter], true)?
        .iter()
        .filter_map(|r| docker.image_label(&r.id, IMAGE_RUNTIME_LABEL))
        .collect())
}

/// Remove the shared runtimes this checkout used that no image of any
/// checkout runs with any more and nothing uses (Docker refuses one a
/// container mounts), and the per-checkout volumes of earlier versions.
/// `in_use` names what other checkouts' runs and clusters use (the rule
/// `clean` follows too, `footprint::volumes_in_use`), asked only when there
/// is a candidate; `None` when that cannot be read.
pub fn remove_unused(
    docker: &Docker,
    ws: &Workspace,
    in_use_elsewhere: impl FnOnce() -> Option<Vec<String>>,
) {
    let (_, in_use) = runs::in_use(ws);
    let mut record = read_record(ws);
    // Not knowing what images need means removing nothing shared.
    let Ok(wanted) = wanted(docker) else {
        return;
    };
    let candidates: Vec<String> = record
        .complete
        .iter()
        .filter(|v| !wanted.contains(v) && !in_use.contains(v))
        .filter(|v| !docker.container_exists(&maker_name(v)))
        .cloned()
        .collect();
    // What other checkouts' runs in progress and kept clusters use; a
    // runtime just made for a build still under way is in no registration
    // yet: that build checks its runtime is still there when it ends.
    let busy = if candidates.is_empty() {
        Some(Vec::new())
    } else {
        in_use_elsewhere()
    };
    let Some(busy) = busy else {
        return;
    };
    for old in candidates.iter().filter(|v| !busy.contains(v)) {
        if docker.volume_rm(old) || !docker.volume_exists(old) {
            record.complete.retain(|n| n != old);
        }
    }
    // Each checkout's own runtimes, copies of /venv and uv cache, as
    // earlier versions made them.
    let legacy = docker
        .volumes(&[label_filter(RUNTIME_LABEL, &ws.checkout_id)])
        .unwrap_or_default();
    for old in legacy.iter().filter(|v| !in_use.contains(*v)) {
        docker.volume_rm(old);
    }
    let _ = write_record(ws, &record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_per_set_of_inputs() {
        let dir = std::env::temp_dir().join(format!("xtask-runtime-key-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let reqs = dir.join("requirements.txt");
        let script = dir.join("runtime.sh");
        fs::write(&script, "set -e\n").unwrap();
        fs::write(&reqs, "a==1 --hash=sha256:00\n").unwrap();
        let inputs = |base_id| Inputs {
            base_id,
            base: "b",
            requirements: &reqs,
            uv: Path::new("/uv"),
        };
        let a = key(&script, &inputs("sha256:1")).unwrap();
        assert_eq!(key(&script, &inputs("sha256:1")).unwrap(), a);
        assert_ne!(key(&script, &inputs("sha256:2")).unwrap(), a, "a new base");
        fs::write(&reqs, "a==2 --hash=sha256:01\n").unwrap();
        assert_ne!(key(&script, &inputs("sha256:1")).unwrap(), a, "new pins");
        assert_eq!(name_for(&a), format!("libertem-dist-runtime-{a}"));
        let b = key(&script, &inputs("sha256:1")).unwrap();
        fs::write(&script, "set -ex\n").unwrap();
        assert_ne!(
            key(&script, &inputs("sha256:1")).unwrap(),
            b,
            "the script edited"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
