//! `cargo xtask completions SHELL`

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Completions};

impl Completions {
    pub fn run(self) -> Result<()> {
        let shell: clap_complete::Shell = self.shell.parse().map_err(|_| {
            anyhow::anyhow!(
                "unknown shell {:?}: use bash, zsh, fish, elvish or powershell",
                self.shell
            )
        })?;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "cargo-xtask",
            &mut std::io::stdout(),
        );
        Ok(())
    }
}
