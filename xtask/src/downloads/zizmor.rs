//! zizmor, the GitHub Actions linter that `check-ci` runs: the wheel from
//! PyPI, pinned and hash-checked like uv, under `target/dist-test/tools/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xshell::Shell;

use super::{pip_install, Wheel};
use crate::ui::Ui;
use crate::workspace::Workspace;

/// The zizmor `check-ci` runs. Always this one, never one from PATH: another
/// version has other audits, so the same workflow could pass here and fail
/// there.
pub const ZIZMOR_VERSION: &str = "1.32.0";

/// The wheels of zizmor 1.32.0 we accept: Linux x86_64 (manylinux_2_28) and
/// aarch64 (manylinux_2_24), macOS arm64 and x86_64.
pub const ZIZMOR: Wheel = Wheel {
    name: "zizmor",
    version: ZIZMOR_VERSION,
    sha256: &[
        "84a6acb975accc13408786a2bd274b572537ca19c933ebbc13e78f3988562071",
        "0cdd38fca6eb34ceb567548548d706332e3535ea66894b9168c048e03207b68c",
        "0a999c98015becd9f69919ce01febadfb1c2be9b8ec2ce9ef7eb13ff23ba8eba",
        "aa4b4e216321dd5cf202cd79fc83296468f0eed79d850cd65ac8187a6bbc5496",
    ],
    fix: "check the network",
};

/// The pinned zizmor, installed once into
/// `target/dist-test/tools/zizmor-<version>/` with pip in hash-checking mode.
pub fn zizmor(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<PathBuf> {
    let dir = ws
        .target
        .join("tools")
        .join(format!("zizmor-{ZIZMOR_VERSION}"));
    let zizmor = dir.join("bin").join("zizmor");
    if zizmor.is_file() {
        return Ok(zizmor);
    }
    let python = which::which("python3")
        .context("python3 (with pip) is needed once, to fetch zizmor from PyPI: install it")?;
    pip_install(sh, ui, &python, &ZIZMOR, &dir)?;
    if !zizmor.is_file() {
        anyhow::bail!(
            "the zizmor {ZIZMOR_VERSION} wheel holds no bin/zizmor: remove {} and try again",
            dir.display()
        );
    }
    Ok(zizmor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zizmor_requirement_pins_every_hash() {
        let r = ZIZMOR.requirement();
        assert!(
            r.starts_with("zizmor==1.32.0 \\\n    --hash=sha256:84a6"),
            "{r}"
        );
        assert_eq!(r.matches("--hash=sha256:").count(), 4);
        assert!(ZIZMOR.sha256.iter().all(|h| h.len() == 64));
    }
}
