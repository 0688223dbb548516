//! The controller's connection file reaches the engines without a shared
//! folder: the controller runs on the manager and writes it into a folder
//! of the manager's; the xtask hands it to each engine's container through
//! that container's node engine (`docker exec`, the file on standard input,
//! never in an argument), where the engine waits for it (file.rs, ENGINE).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::nodes::NodeEngine;
use crate::docker::label_filter;
use crate::labels::SERVICE_NAME_LABEL;

/// Where ipcontroller writes the engines' file, under its IPYTHONDIR.
const ENGINE_FILE: &str = "profile_default/security/ipcontroller-engine.json";

/// Written whole, then renamed: the engine never reads half a file.
const PUT: &str = "d=/ipython/profile_default/security; test -s $d/ipcontroller-engine.json \
                   || { mkdir -p $d && cat > $d/.engine.part \
                   && mv $d/.engine.part $d/ipcontroller-engine.json; }";

/// The controller's file, once it is there whole (JSON that parses).
pub fn engine_file(ipython: &Path) -> Option<String> {
    let text = std::fs::read_to_string(ipython.join(ENGINE_FILE)).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?;
    Some(text)
}

/// Hand the controller's file to the running container of `service` on
/// one of `engines`: whether one took it; what went wrong, if anything did.
fn hand_over(engines: &[NodeEngine], service: &str, text: &str) -> Result<bool> {
    let filter = label_filter(SERVICE_NAME_LABEL, service);
    for (host, node) in engines {
        let running = node.containers(std::slice::from_ref(&filter))?;
        if let Some(c) = running.into_iter().find(|c| c.running()) {
            node.exec_fed(&c.id, &["sh", "-c", PUT], text.as_bytes())
                .with_context(|| format!("handing {service} its file on {host}"))?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Until every engine service in `services` (full names) has the
/// controller's file from `ipython`, or a service of the stack has ended
/// (`ended`; readiness then says why), or `deadline`.
pub fn deliver(
    engines: &[NodeEngine],
    ipython: &Path,
    mut services: Vec<String>,
    deadline: Instant,
    ended: &dyn Fn() -> bool,
) -> Result<()> {
    let mut last_error = None;
    while !services.is_empty() {
        crate::interrupt::check()?;
        if let Some(text) = engine_file(ipython) {
            services.retain(|s| match hand_over(engines, s, &text) {
                Ok(taken) => !taken,
                Err(e) => {
                    last_error = Some(format!("{e:#}"));
                    true
                }
            });
        }
        if services.is_empty() || ended() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let why = last_error.map_or_else(
                || "see `cargo xtask logs ipy-controller` and the engines' tasks (`docker stack ps`)".to_string(),
                |e| format!("the last attempt: {e}"),
            );
            bail!(
                "the controller's connection file did not reach {} in time: {why}",
                services.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// Remove a connection file an earlier controller left (before a new one
/// starts): an engine must never get a stale key.
pub fn forget(ipython: &Path) -> Result<()> {
    crate::fsx::remove_file(&ipython.join(ENGINE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_file_is_not_the_file() {
        let dir = crate::fsx::scratch("connection");
        assert_eq!(engine_file(&dir), None);
        let file = dir.join(ENGINE_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{\"key\": \"ab").unwrap();
        assert_eq!(engine_file(&dir), None);
        std::fs::write(&file, "{\"key\": \"abc\"}").unwrap();
        assert_eq!(engine_file(&dir).as_deref(), Some("{\"key\": \"abc\"}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
