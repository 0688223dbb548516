//! `cargo xtask`: LiberTEM's distributed test cluster, built, run and torn
//! down in one command. See README.md and docs/dist-tests.md.

mod cli;
mod cluster;
mod commands;
mod compose;
mod config;
mod doctor;
mod downloads;
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
use crate::workspace::Location;

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
    let config = match &cli.config {
        Some(p) => std::env::current_dir()?.join(p),
        None => root.join(config::FILE_NAME),
    };
    let loc = Location {
        root: root.clone(),
        config,
    };
    let sh = Shell::new()?;
    sh.change_dir(&root);
    match cli.command {
        Command::DistTest(c) => c.run(&sh, &loc),
        Command::UpdateReqs(c) => c.run(&sh, &loc),
        Command::Build(c) => c.run(&sh, &loc),
        Command::Up(c) => c.run(&sh, &loc),
        Command::Status(c) => c.run(&sh, &loc),
        Command::Logs(c) => c.run(&sh, &loc),
        Command::Test(c) => c.run(&sh, &loc),
        Command::Down(c) => c.run(&sh, &loc),
        Command::Doctor(c) => c.run(&sh, &loc),
        Command::Completions(c) => c.run(),
    }
}

/// The checkout this xtask was built in. `XTASK_WORKSPACE_ROOT` points the
/// same binary at another copy of the checkout (the tests use it to run two
/// checkouts at once without building twice).
fn workspace_root() -> PathBuf {
    match std::env::var_os("XTASK_WORKSPACE_ROOT") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    }
}
