//! Finding the programs the xtask drives, and which way they work here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::compose::Flavour;

/// The docker client used for builds, and whether it can pass build secrets.
#[derive(Debug, Clone)]
pub struct Docker {
    /// The client for everything but builds: the first `docker` on PATH.
    pub cli: PathBuf,
    /// The client that builds with BuildKit (buildx, or a pre-23 client with
    /// BuildKit built in). `None`: only the legacy builder is available.
    pub builder: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Tools {
    pub docker: Docker,
    pub compose: Flavour,
}

/// Check up front for every program a command needs; report all that are
/// missing in one message.
pub fn detect(sh: &Shell) -> Result<Tools> {
    let mut missing = Vec::new();
    let clients: Vec<PathBuf> = match which::which_all("docker") {
        Ok(found) => dedup_paths(found),
        Err(_) => Vec::new(),
    };
    if clients.is_empty() {
        missing.push("docker: install Docker Engine (https://docs.docker.com/engine/install/)");
    }
    let compose = if clients.is_empty() {
        None
    } else {
        detect_compose(sh, &clients[0])
    };
    if compose.is_none() {
        missing.push(
            "docker compose: install the compose plugin (docker-compose-plugin) \
             or the standalone docker-compose",
        );
    }
    if !missing.is_empty() {
        bail!("missing tools: {}", missing.join("; "));
    }
    let cli = clients[0].clone();
    let builder = clients
        .iter()
        .find(|c| builds_with_buildkit(sh, c))
        .cloned();
    Ok(Tools {
        docker: Docker { cli, builder },
        compose: compose.unwrap(),
    })
}

fn dedup_paths(found: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in found {
        let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !seen.contains(&real) {
            seen.push(real);
            out.push(p);
        }
    }
    out
}

fn detect_compose(sh: &Shell, docker: &Path) -> Option<Flavour> {
    if let Ok(v) = cmd!(sh, "{docker} compose version --short")
        .quiet()
        .ignore_stderr()
        .read()
    {
        return Some(Flavour::Plugin {
            docker: docker.to_path_buf(),
            version: v.trim().into(),
        });
    }
    let bin = which::which("docker-compose").ok()?;
    let v = cmd!(sh, "{bin} version --short")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    Some(Flavour::Standalone {
        bin,
        version: v.trim().trim_start_matches('v').into(),
    })
}

/// Can this client build with BuildKit? Either buildx is installed as its
/// plugin, or it is a client from before 23.0, which has BuildKit built in.
fn builds_with_buildkit(sh: &Shell, docker: &Path) -> bool {
    if cmd!(sh, "{docker} buildx version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        return true;
    }
    let format = "{{.Client.Version}}";
    let Ok(v) = cmd!(sh, "{docker} version --format {format}")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        // The engine may be down; the client version is still printed first.
        return false;
    };
    client_has_native_buildkit(v.trim())
}

pub fn client_has_native_buildkit(version: &str) -> bool {
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (18..23).contains(&major)
}

impl Docker {
    /// Is the engine reachable? The message says how to fix it when not.
    pub fn check_engine(&self, sh: &Shell) -> Result<()> {
        let cli = &self.cli;
        let format = "{{.Server.Version}}";
        match cmd!(sh, "{cli} version --format {format}")
            .quiet()
            .ignore_stderr()
            .read()
        {
            Ok(v) if !v.trim().is_empty() => Ok(()),
            _ => bail!(
                "the Docker engine is not reachable from {}: start it (e.g. `sudo systemctl \
                 start docker`) or check DOCKER_HOST and your permission on the socket",
                cli.display()
            ),
        }
    }

    pub fn builder(&self) -> Result<&Path> {
        self.builder.as_deref().context(
            "no docker client here can build with BuildKit: install the buildx plugin \
             (docker-buildx-plugin) for your docker client",
        )
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
    let mut out = Vec::new();
    for key in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ] {
        if let Ok(v) = std::env::var(key) {
            if !v.is_empty() {
                out.push("--build-arg".to_string());
                out.push(format!("{key}={v}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_buildkit_only_before_23() {
        assert!(client_has_native_buildkit("20.10.24+dfsg1"));
        assert!(!client_has_native_buildkit("28.2.2"));
        assert!(!client_has_native_buildkit("24.0.7"));
        assert!(!client_has_native_buildkit("garbage"));
    }
}
