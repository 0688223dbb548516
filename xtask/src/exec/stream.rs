//! Programs followed while they run: one started in the background whose
//! log is shown as it grows ([`Background`]), and one whose output lines
//! are read as they come ([`Lines`]). Both are killed and reaped when
//! dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{echo_command, wait_watching};
use crate::ui::Ui;

/// A command started in the background with its output going to a log
/// only, followed later (see [`Background::follow`]): the tests, started
/// while the cluster is still getting ready. Its input is nothing, or with
/// [`start_logged_tethered`] a pipe held open for as long as it runs: a
/// program in a container (`docker exec`) that watches its input ends when
/// the pipe closes, which a killed `docker exec` client would not make it
/// do. Killed and reaped when dropped unfollowed.
pub struct Background {
    child: Option<Child>,
    tether: Option<std::process::ChildStdin>,
    log: PathBuf,
}

pub fn start_logged(command: Command, log: &Path, ui: Ui) -> Result<Background> {
    start(command, log, ui, false)
}

/// [`start_logged`], its input a pipe closed only when it ended or is dropped.
pub fn start_logged_tethered(command: Command, log: &Path, ui: Ui) -> Result<Background> {
    start(command, log, ui, true)
}

fn start(mut command: Command, log: &Path, ui: Ui, tethered: bool) -> Result<Background> {
    echo_command(ui, &command);
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let program = command.get_program().to_string_lossy().into_owned();
    let input = if tethered {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command
        .stdin(input)
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    Ok(Background {
        tether: child.stdin.take(),
        child: Some(child),
        log: log.to_path_buf(),
    })
}

impl Background {
    /// Show its log from the start and as it grows (unless `--quiet`), until
    /// it exits; stopped at `deadline`. `None` when the deadline stopped it.
    pub fn follow(
        mut self,
        ui: Ui,
        deadline: Instant,
        tick: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<Option<ExitStatus>> {
        let child = self
            .child
            .take()
            .context("the command was already followed")?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shower = {
            let (done, log, show) = (done.clone(), self.log.clone(), !ui.quiet);
            std::thread::spawn(move || show_growing(&log, &done, show))
        };
        let status = wait_watching(child, Some(deadline), tick);
        drop(self.tether.take());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = shower.join();
        status
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.tether.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A command whose output lines are read as they come (a watcher), with
/// our pipe as its input and its stderr kept for when it fails. When
/// dropped, its input is closed (a watcher that reads it ends by itself)
/// and, if it has not ended a moment later, it is killed; either way reaped.
pub struct Lines {
    child: Child,
    input: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    /// A line taken while looking whether the output had ended.
    early: Option<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

pub fn start_lines(mut command: Command, ui: Ui) -> Result<Lines> {
    use std::io::{BufRead, Read};
    echo_command(ui, &command);
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let (out, mut err) = (child.stdout.take(), child.stderr.take());
    let (send, lines) = std::sync::mpsc::channel();
    if let Some(out) = out {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(err) = err.as_mut() {
            let _ = err.read_to_string(&mut text);
        }
        text
    });
    Ok(Lines {
        input: child.stdin.take(),
        child,
        lines,
        early: None,
        stderr: Some(stderr),
    })
}

impl Lines {
    /// The next line, waiting at most `timeout` for it; `None` when none
    /// came in that time or the output has ended.
    pub fn next(&mut self, timeout: Duration) -> Option<String> {
        self.early
            .take()
            .or_else(|| self.lines.recv_timeout(timeout).ok())
    }

    /// Its exit status, once it has exited and every line was taken.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        if self.early.is_some() {
            return Ok(None);
        }
        let Some(status) = self.child.try_wait()? else {
            return Ok(None);
        };
        match self.lines.try_recv() {
            Ok(line) => {
                self.early = Some(line);
                Ok(None)
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => Ok(None),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Ok(Some(status)),
        }
    }

    /// What it wrote to stderr, once it has exited.
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        drop(self.input.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copy `log` to stderr as it grows, until `done` is set and all is shown.
fn show_growing(log: &Path, done: &std::sync::atomic::AtomicBool, show: bool) {
    use std::io::{Read, Write};
    let Ok(mut file) = fs::File::open(log) else {
        return;
    };
    let mut buf = [0u8; 8192];
    loop {
        // Read `done` before reading: once set, one more read gets the rest.
        let last = done.load(std::sync::atomic::Ordering::SeqCst);
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            if show {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
        }
        if last {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_command_is_followed_to_its_end_or_killed_when_dropped() {
        let dir = std::env::temp_dir().join(format!("xtask-bg-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("bg.log");
        let mut c = Command::new("sh");
        c.args(["-c", "echo started; sleep 0.3; echo done; exit 3"]);
        let bg = start_logged(c, &log, Ui::default()).unwrap();
        let status = bg
            .follow(
                Ui::default(),
                Instant::now() + Duration::from_secs(20),
                &mut || Ok(false),
            )
            .unwrap()
            .expect("it ended before the deadline");
        assert_eq!(status.code(), Some(3));
        assert_eq!(fs::read_to_string(&log).unwrap(), "started\ndone\n");

        let mut c = Command::new("sh");
        c.args(["-c", "echo $$ > \"$0\"; exec sleep 30"])
            .arg(dir.join("pid"));
        let bg = start_logged(c, &log, Ui::default()).unwrap();
        let pid_file = dir.join("pid");
        let start = Instant::now();
        while fs::read_to_string(&pid_file).map_or(true, |p| p.trim().is_empty()) {
            assert!(start.elapsed() < Duration::from_secs(10), "never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
        drop(bg);
        let alive = Command::new("kill")
            .args(["-0", &pid])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "dropped unfollowed, it is killed and reaped");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_watcher_ends_when_its_input_is_closed() {
        // `cat` copies its input: it ends when we close it.
        let mut c = Command::new("sh");
        c.args(["-c", "echo first; cat >/dev/null; echo gone >&2"]);
        let mut w = start_lines(c, Ui::default()).unwrap();
        assert_eq!(w.next(Duration::from_secs(10)).as_deref(), Some("first"));
        let pid = w.child.id();
        let start = Instant::now();
        drop(w);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "ended by itself, not killed"
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "reaped"
        );
    }
}
