//! The programs the xtask drives (docker, compose), found up front, and
//! what builds are handed from the host: its CA bundle and proxy settings.

use std::path::PathBuf;

use anyhow::{bail, Result};
use xshell::Shell;

use crate::docker::compose::Flavour;
use crate::docker::{self, Clients};

#[derive(Debug, Clone)]
pub struct Tools {
    pub docker: Clients,
    pub compose: Flavour,
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
