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

/// A line of a command's listing on stdout (clean's plan, history, doctor's
/// checks), which such a command prints once its work is done: when the
/// reader has gone (`cargo xtask clean --dry-run | head`) the command ends
/// quietly with 141 (as if by SIGPIPE, as `ls` would), where `println!`
/// panics. Not for a command that still has a cluster to tear down.
pub fn out_line(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`out_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::ui::out_line(format_args!($($arg)*))
    };
}
