//! Where the user's cluster is, from the flags and dist-test.toml.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::AttachCfg;

/// Where the user's cluster is: from `--scheduler`, `--ipython-client`,
/// `--network` and `--scratch`, else `[attach]` of dist-test.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachTo {
    pub scheduler: String,
    pub client_file: PathBuf,
    pub network: Option<String>,
    pub scratch: PathBuf,
}

impl AttachTo {
    /// The flags over the config; one line for what is missing or wrong.
    pub fn resolve(flags: AttachCfg, cfg: &AttachCfg, default_scratch: &Path) -> Result<AttachTo> {
        let scheduler = (flags.scheduler.or_else(|| cfg.scheduler.clone())).context(
            "--attach needs the Dask scheduler's address: --scheduler tcp://HOST:8786 \
             (or scheduler in [attach] of dist-test.toml)",
        )?;
        if !scheduler.contains("://") {
            bail!("--scheduler {scheduler}: give the address with its protocol, e.g. tcp://{scheduler}");
        }
        let client_file = (flags.ipython_client.or_else(|| cfg.ipython_client.clone())).context(
            "--attach needs the ipyparallel controller's ipcontroller-client.json: \
             --ipython-client FILE (or ipython_client in [attach] of dist-test.toml)",
        )?;
        let text = std::fs::read_to_string(&client_file).map_err(|e| {
            anyhow::anyhow!(
                "--ipython-client {}: {e}; give the controller's ipcontroller-client.json",
                client_file.display()
            )
        })?;
        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
            bail!(
                "--ipython-client {} is not the controller's connection file (not JSON)",
                client_file.display()
            );
        }
        let client_file = std::fs::canonicalize(&client_file)?;
        let scratch = (flags.scratch.or_else(|| cfg.scratch.clone()))
            .unwrap_or_else(|| default_scratch.to_path_buf());
        if !scratch.is_absolute() {
            bail!(
                "--scratch {}: give an absolute path, the same on the workers",
                scratch.display()
            );
        }
        Ok(AttachTo {
            scheduler,
            client_file,
            network: flags.network.or_else(|| cfg.network.clone()),
            scratch,
        })
    }
}
