//! `cargo xtask`: LiberTEM's distributed test cluster, built, run and torn
//! down in one command. See README.md and docs/dist-tests.md.

mod cli;
mod cluster;
mod commands;
mod compose;
mod config;
mod doctor;
mod image;
mod interrupt;
mod project;
mod report;
mod reqs;
mod tools;
mod ui;
mod workspace;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Parser;
use xshell::Shell;

use crate::cli::{Cli, Command};

fn main() {
    match try_main() {
        Ok(()) => {}
        Err(e) => {
            if let Some(commands::ExitCode(code)) = e.downcast_ref::<commands::ExitCode>() {
                std::process::exit(*code);
            }
            eprintln!("error: {e:#}");
            std::process::exit(if interrupt::interrupted() { 130 } else { 1 });
        }
    }
}

fn try_main() -> Result<()> {
    let cli = Cli::parse();
    ui::set_verbosity(cli.verbose, cli.quiet);
    interrupt::install()?;
    let root = workspace_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    match cli.command {
        Command::DistTest(c) => c.run(&sh, &root),
        Command::UpdateReqs(c) => c.run(&sh, &root),
        Command::Build(c) => c.run(&sh, &root),
        Command::Up(c) => c.run(&sh, &root),
        Command::Status(c) => c.run(&sh, &root),
        Command::Logs(c) => c.run(&sh, &root),
        Command::Test(c) => c.run(&sh, &root),
        Command::Down(c) => c.run(&sh, &root),
        Command::Doctor(c) => c.run(&sh, &root),
        Command::Completions(c) => c.run(),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
