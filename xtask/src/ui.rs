//! Output for people and for CI: one line per step, colour only on a terminal.

use std::io::IsTerminal;

/// How much to print, from `--verbose` / `--quiet`; part of every command's
/// context instead of a global.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ui {
    /// Echo every docker and compose command, and stream build output.
    pub verbose: bool,
    /// Print only errors and the final result.
    pub quiet: bool,
}

impl Ui {
    /// A progress line, unless `--quiet` (above the live line, if any).
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{}    {msg}", crate::live::clear_prefix());
        }
    }
}

fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `  build        12.3 s  done`
pub fn step_line(name: &str, secs: f64, mark: &str) -> String {
    let mark = match (colour(), mark) {
        (true, "done") => format!("\x1b[32m{mark}\x1b[0m"),
        (true, _) => format!("\x1b[31m{mark}\x1b[0m"),
        (false, _) => mark.to_string(),
    };
    format!("  {name:<10} {secs:>7.1} s  {mark}")
}

/// A heading; under GitHub Actions it opens a foldable group.
pub fn group(title: &str) {
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        eprintln!("::group::{title}");
    } else if colour() {
        eprintln!("\x1b[1m==> {title}\x1b[0m");
    } else {
        eprintln!("==> {title}");
    }
}

pub fn end_group() {
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        eprintln!("::endgroup::");
    }
}
