//! Which docker clients this machine has, which of them builds with
//! BuildKit, and which compose: detected, not assumed (Debian's 20.10
//! client builds with BuildKit natively; a newer one needs buildx; compose
//! is the `docker compose` plugin or the standalone `docker-compose`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use xshell::{cmd, Shell};

use super::Clients;
use crate::docker::compose::Flavour;
use crate::exec;
use crate::ui::Ui;

/// A client's own answers come at once; the engine may be slower.
const ASK: Duration = Duration::from_secs(30);

/// Every `docker` on PATH (the same program once), the first for
/// everything but builds, the first that builds with BuildKit for builds.
/// `None` when there is no docker client at all.
pub fn find_clients(sh: &Shell) -> Option<Clients> {
    let found = which::which_all("docker")
        .map(dedup_paths)
        .unwrap_or_default();
    let cli = found.first()?.clone();
    let builder = found.iter().find(|c| builds_with_buildkit(sh, c)).cloned();
    Some(Clients { cli, builder })
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

/// The `docker compose` plugin of `docker`, else the standalone
/// `docker-compose` on PATH.
pub fn compose_flavour(sh: &Shell, docker: &Path) -> Option<Flavour> {
    let ui = Ui::default();
    if let Ok(v) = exec::read(cmd!(sh, "{docker} compose version --short"), ASK, ui) {
        return Some(Flavour::Plugin {
            docker: docker.to_path_buf(),
            version: v.trim().into(),
        });
    }
    let bin = which::which("docker-compose").ok()?;
    let v = exec::read(cmd!(sh, "{bin} version --short"), ASK, ui).ok()?;
    Some(Flavour::Standalone {
        bin,
        version: v.trim().trim_start_matches('v').into(),
    })
}

/// Can this client build with BuildKit? Either buildx is installed as its
/// plugin, or it is a client from before 23.0, which has BuildKit built in.
fn builds_with_buildkit(sh: &Shell, docker: &Path) -> bool {
    let ui = Ui::default();
    if exec::succeeds(cmd!(sh, "{docker} buildx version"), ASK, ui) {
        return true;
    }
    // The client's version is printed even when the engine is down.
    let format = "{{.Client.Version}}";
    let out = exec::output(cmd!(sh, "{docker} version --format {format}"), ASK, ui);
    let Ok(out) = out else { return false };
    let v = String::from_utf8_lossy(&out.stdout);
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
