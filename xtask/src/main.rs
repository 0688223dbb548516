//! `cargo xtask`: parse, dispatch, exit code. Everything else is in the
//! library (lib.rs).

use anyhow::Result;
use clap::Parser;

use xtask::cli::{Cli, Command};
use xtask::context::Invocation;
use xtask::run::ExitCode;
use xtask::ui::Ui;
use xtask::workspace::Location;
use xtask::{exec, interrupt};

fn main() {
    match try_main() {
        Ok(()) => {}
        Err(e) => {
            if let Some(ExitCode(code)) = e.downcast_ref::<ExitCode>() {
                std::process::exit(*code);
            }
            eprintln!("error: {e:#}");
            std::process::exit(if interrupt::interrupted() { 130 } else { 1 });
        }
    }
}

fn try_main() -> Result<()> {
    let cli = Cli::parse();
    let ui = Ui {
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    exec::stop_on_signals()?;
    let inv = Invocation::new(Location::new(cli.config.as_deref())?, ui, !cli.fail_if_busy)?;
    match cli.command {
        Command::DistTest(c) => c.run(&inv),
        Command::UpdateReqs(c) => c.run(&inv),
        Command::Build(c) => c.run(&inv),
        Command::Up(c) => c.run(&inv),
        Command::Status(c) => c.run(&inv),
        Command::Logs(c) => c.run(&inv),
        Command::Test(c) => c.run(&inv),
        Command::Down(c) => c.run(&inv),
        Command::Testdata(c) => c.run(&inv),
        Command::Clean(c) => c.run(&inv),
        Command::History(c) => c.run(&inv),
        Command::Doctor(c) => c.run(&inv),
        Command::CheckCi(c) => c.run(&inv),
        Command::SwarmLab(c) => c.run(&inv),
        Command::Completions(c) => c.run(),
    }
}
