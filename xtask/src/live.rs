//! The live line: on a terminal, a long phase redraws one line in place with
//! its seconds so far and what it is doing now (the build's stage and the
//! last line of its log, readiness as workers m/n and engines m/n). Without
//! a terminal nothing is drawn: there each step prints one line when it ends,
//! and logs get no control characters.

use std::io::IsTerminal;

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
    /// `enabled`: nothing else writes to the terminal during the phase
    /// (neither `--quiet` nor `--verbose`, whose streamed output it would cut).
    pub fn start(phase: &str, enabled: bool) -> Live {
        let phase = phase.to_string();
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let on = enabled && std::io::stderr().is_terminal();
        let thread = on.then(|| {
            let stop = stop.clone();
            let start = std::time::Instant::now();
            LIVE_ON.store(true, Ordering::Relaxed);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let line = live_line(&phase, start.elapsed().as_secs_f64(), width());
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

/// The terminal's width in columns: `COLUMNS` when set (a user's override),
/// else what the terminal on stderr says it is now (it may be resized
/// while a phase runs), else 80.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| {
            terminal_size::terminal_size_of(std::io::stderr()).map(|(w, _)| usize::from(w.0))
        })
        .unwrap_or(80)
}

/// The live line for a terminal `width` columns wide: one column short of
/// it, so that the cursor never wraps to a new line.
fn live_line(phase: &str, secs: f64, width: usize) -> String {
    let (text, follow) = match &*STATUS.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(s) => (s.text.clone(), s.follow.clone()),
        None => (String::new(), None),
    };
    let mut line = format!("  {phase:<10} {secs:>7.1} s  {text}");
    if let Some(last) = follow.as_deref().and_then(last_line) {
        line.push_str(" | ");
        line.push_str(&last);
    }
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

/// What to print before a line of other output: the escape that clears a
/// live line, if one is drawn.
pub fn clear_prefix() -> &'static str {
    if LIVE_ON.load(std::sync::atomic::Ordering::Relaxed) {
        "\r\x1b[K"
    } else {
        ""
    }
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
        let line = live_line("build", 3.0, 120);
        assert!(line.contains("build") && line.contains("3.0 s"), "{line}");
        assert!(line.ends_with("base image | I: Retrieving libc6"), "{line}");
        assert!(!line.contains('\x1b'));
        // A 60-column terminal: the line ends before the last column.
        std::fs::write(
            &p,
            "I: Retrieving libc6 2.36-9+deb12u13 from the fallback mirror\n",
        )
        .unwrap();
        let narrow = live_line("build", 3.0, 60);
        assert_eq!(narrow.chars().count(), 59, "{narrow}");
        assert!(narrow.ends_with('…'), "{narrow}");
        std::fs::remove_file(p).unwrap();
    }
}
