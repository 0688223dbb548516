//! The programs the xtask drives (docker, compose), found up front, and
//! what builds are handed from the host: its CA bundle and proxy settings.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::docker::compose::Flavour;
use crate::docker::{self, Clients};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    pub docker: Clients,
    pub compose: Flavour,
}

/// [`detect`]'s answer, kept in `file` (under the checkout's
/// `target/dist-test`, when that exists) for as long as the programs it
/// asked are the same files: asking them costs every command most of a
/// second (`docker-compose version` alone starts a Python).
pub fn detect_remembered(sh: &Shell, file: &Path) -> Result<Tools> {
    let key = programs_key();
    let kept: Option<Remembered> = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(kept) = kept.filter(|k| k.key == key) {
        return Ok(kept.tools);
    }
    let tools = detect(sh)?;
    if file.parent().is_some_and(Path::is_dir) {
        let text = serde_json::to_string(&Remembered {
            key,
            tools: tools.clone(),
        })?;
        // Only a shortcut: a file that cannot be written is asked again.
        let _ = crate::fsx::write_atomic(file, text.as_bytes());
    }
    Ok(tools)
}

#[derive(Serialize, Deserialize)]
struct Remembered {
    key: String,
    tools: Tools,
}

/// The path, size and time of every program [`detect`] may ask (each
/// `docker` and `docker-compose` on PATH, and docker's CLI plugins), and
/// PATH itself.
fn programs_key() -> String {
    let mut files: Vec<PathBuf> = which::which_all("docker")
        .map(|found| found.collect())
        .unwrap_or_default();
    files.extend(which::which_all("docker-compose").into_iter().flatten());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".docker")));
    let mut plugin_dirs: Vec<PathBuf> = config.into_iter().map(|c| c.join("cli-plugins")).collect();
    for prefix in [
        "/usr/local/lib",
        "/usr/local/libexec",
        "/usr/lib",
        "/usr/libexec",
    ] {
        plugin_dirs.push(Path::new(prefix).join("docker/cli-plugins"));
    }
    for dir in plugin_dirs {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        files.push(dir);
    }
    let mut text = format!("PATH {}\n", std::env::var("PATH").unwrap_or_default());
    for f in files {
        let stamp = std::fs::metadata(&f)
            .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
            .unwrap_or_else(|_| "absent".into());
        text.push_str(&format!("{} {stamp}\n", f.display()));
    }
    crate::digest::sha256_bytes(text.as_bytes())
}

/// Check up front for every program a command needs; report all that are
/// missing in one message.
pub fn detect(sh: &Shell) -> Result<Tools> {
    let mut missing = Vec::new();
    let clients = docker::find_clients(sh);
    if clients.is_none() {
        missing.push("docker: install Docker Engine (https://docs.docker.com/engine/install/)");
    }
    let compose = clients
        .as_ref()
        .and_then(|c| docker::compose_flavour(sh, &c.cli));
    if compose.is_none() {
        missing.push(
            "docker compose: install the compose plugin (docker-compose-plugin) \
             or the standalone docker-compose",
        );
    }
    match (clients, compose) {
        (Some(docker), Some(compose)) => Ok(Tools { docker, compose }),
        _ => bail!("missing tools: {}", missing.join("; ")),
    }
}

/// The CA bundle that host tools trust, to hand to builds that fetch over TLS.
pub fn ca_bundle() -> Option<PathBuf> {
    let from_env = ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from);
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from);
    from_env.chain(system).find(|p| p.is_file())
}

/// Proxy settings to pass to builds; Docker keeps these out of the image history.
pub fn proxy_build_args() -> Vec<String> {
    proxy_env()
        .into_iter()
        .flat_map(|kv| ["--build-arg".to_string(), kv])
        .collect()
}

/// The proxy settings of this environment, as `KEY=value`.
pub fn proxy_env() -> Vec<String> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ]
    .iter()
    .filter_map(|key| {
        let v = std::env::var(key).ok().filter(|v| !v.is_empty())?;
        Some(format!("{key}={v}"))
    })
    .collect()
}
