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

/// A progress line, unless `--quiet`. It goes above a live line, if one is
/// drawn.
pub fn say(msg: &str) {
    if !quiet() {
        let clear = if LIVE_ON.load(std::sync::atomic::Ordering::Relaxed) {
            "\r\x1b[K"
        } else {
            ""
        };
        eprintln!("{clear}    {msg}");
    }
}

/// Is a live line being drawn (so that other output must clear it first)?
static LIVE_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What a long phase is doing now, shown live on a terminal (see [`Live`]).
struct Status {
    text: String,
    follow: Option<std::path::PathBuf>,
}

static STATUS: std::sync::Mutex<Option<Status>> = std::sync::Mutex::new(None);

/// Say what the running phase is doing now; on a terminal the live line
/// shows it, with the last line of `follow` (a log being written) after it.
/// Nothing is printed without a terminal: there each step gets one line.
pub fn status(text: impl Into<String>, follow: Option<&std::path::Path>) {
    let mut s = STATUS.lock().unwrap_or_else(|e| e.into_inner());
    *s = Some(Status {
        text: text.into(),
        follow: follow.map(std::path::Path::to_path_buf),
    });
}

/// A line redrawn in place while a phase runs, on a terminal only: the
/// phase, its seconds so far and its status. Cleared when dropped, before
/// the phase's own one-line result is printed.
pub struct Live {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    pub fn start(phase: &'static str) -> Live {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let on = !quiet() && !verbose() && std::io::stderr().is_terminal();
        let thread = on.then(|| {
            let stop = stop.clone();
            let start = std::time::Instant::now();
            LIVE_ON.store(true, Ordering::Relaxed);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let line = live_line(phase, start.elapsed().as_secs_f64());
                    eprint!("\r\x1b[K{line}");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                eprint!("\r\x1b[K");
                LIVE_ON.store(false, Ordering::Relaxed);
            })
        });
        Live { stop, thread }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn live_line(phase: &str, secs: f64) -> String {
    let (text, follow) = match &*STATUS.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(s) => (s.text.clone(), s.follow.clone()),
        None => (String::new(), None),
    };
    let mut line = format!("  {phase:<10} {secs:>7.1} s  {text}");
    if let Some(last) = follow.as_deref().and_then(last_line) {
        line.push_str(" | ");
        line.push_str(&last);
    }
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120usize);
    fit(&line, width.saturating_sub(1))
}

/// The last non-empty line of a file being written, without control characters.
fn last_line(path: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(plain(last).trim().to_string())
}

/// Text without ANSI escape sequences and control characters.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters... final letter
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Cut a line to `width` characters.
pub fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut out: String = line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_the_terminal() {
        assert_eq!(fit("abcdef", 10), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
    }

    #[test]
    fn the_live_line_shows_the_log_tail_without_control_characters() {
        let p = std::env::temp_dir().join(format!("xtask-live-{}", std::process::id()));
        std::fs::write(&p, "one\n\x1b[1mI: Retrieving libc6\r\n\n").unwrap();
        status("base image", Some(&p));
        let line = live_line("build", 3.0);
        assert!(line.contains("build") && line.contains("3.0 s"), "{line}");
        assert!(line.ends_with("base image | I: Retrieving libc6"), "{line}");
        assert!(!line.contains('\x1b'));
        std::fs::remove_file(p).unwrap();
    }
}
