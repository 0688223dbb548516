//! Output for people and for CI: one line per step, colour only on a terminal.

use std::io::IsTerminal;

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

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_verbosity(verbose: bool, quiet: bool) {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Echo `$ cmd` only with `--verbose`.
pub fn echo(c: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    if verbose() {
        c
    } else {
        c.quiet()
    }
}

/// A progress line, unless `--quiet`.
pub fn say(msg: &str) {
    if !quiet() {
        eprintln!("    {msg}");
    }
}
