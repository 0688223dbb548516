//! Running programs: the `$ cmd` echo, output to a log (and the terminal),
//! deadlines, and waiting so that Ctrl-C or SIGTERM stops the child. Every
//! `std::process` spawn of the crate goes through here; short queries go
//! through xshell's `cmd!`, echoed with [`echo`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::interrupt;
use crate::ui::Ui;

/// Echo `$ cmd` only with `--verbose`.
pub fn echo<'a>(ui: Ui, c: xshell::Cmd<'a>) -> xshell::Cmd<'a> {
    if ui.verbose {
        c
    } else {
        c.quiet()
    }
}

fn echo_command(ui: Ui, command: &Command) {
    if ui.verbose {
        eprintln!("$ {command:?}");
    }
}

/// Run a command with its output going to `log` (and to the terminal with
/// `verbose`); on failure, show the log's last lines.
pub fn run_logged(mut command: Command, log: &Path, verbose: bool) -> Result<()> {
    if verbose {
        eprintln!("$ {command:?}");
    }
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // Waited on through `interrupt`, so that Ctrl-C or SIGTERM stops it.
    let status = if verbose {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().context("child stdout")?;
        let err = child.stderr.take().context("child stderr")?;
        let f2 = file.try_clone()?;
        let t1 = std::thread::spawn(move || tee(out, file, std::io::stdout()));
        let t2 = std::thread::spawn(move || tee(err, f2, std::io::stderr()));
        let status = wait(child, None)?;
        let _ = t1.join();
        let _ = t2.join();
        status
    } else {
        let child = command.stdout(file.try_clone()?).stderr(file).spawn()?;
        wait(child, None)?
    };
    let status = status.context("the command was stopped")?;
    if !status.success() {
        bail!(
            "{} failed ({status}); last lines of {}:\n{}",
            command.get_program().to_string_lossy(),
            log.display(),
            tail_file(log, 25)
        );
    }
    Ok(())
}

/// Run a command with no input, its output going to `log` and, unless
/// `--quiet`, to stderr; stopped at `deadline`. `None` when the deadline
/// stopped it.
pub fn run_teed(
    command: Command,
    log: &Path,
    ui: Ui,
    deadline: Instant,
) -> Result<Option<ExitStatus>> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = spawn_piped(command, ui)?;
    let out = child.stdout.take().context("the child's output")?;
    let err = child.stderr.take().context("the child's errors")?;
    let f2 = file.try_clone()?;
    let show = !ui.quiet;
    let t1 = std::thread::spawn(move || tee_maybe(out, file, show));
    let t2 = std::thread::spawn(move || tee_maybe(err, f2, show));
    let status = wait(child, Some(deadline))?;
    let _ = t1.join();
    let _ = t2.join();
    Ok(status)
}

/// A command started in the background with no input and its output going
/// to a log only, followed later (see [`Background::follow`]): the tests
/// container, started while the cluster is still getting ready. Killed and
/// reaped when dropped unfollowed.
pub struct Background {
    child: Option<Child>,
    log: PathBuf,
}

pub fn start_logged(mut command: Command, log: &Path, ui: Ui) -> Result<Background> {
    echo_command(ui, &command);
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    Ok(Background {
        child: Some(child),
        log: log.to_path_buf(),
    })
}

impl Background {
    /// Show its log from the start and as it grows (unless `--quiet`), until
    /// it exits; stopped at `deadline`. `None` when the deadline stopped it.
    pub fn follow(mut self, ui: Ui, deadline: Instant) -> Result<Option<ExitStatus>> {
        let child = self
            .child
            .take()
            .context("the command was already followed")?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shower = {
            let (done, log, show) = (done.clone(), self.log.clone(), !ui.quiet);
            std::thread::spawn(move || show_growing(&log, &done, show))
        };
        let status = wait(child, Some(deadline));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = shower.join();
        status
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Started with no input and its output and errors piped to us.
fn spawn_piped(mut command: Command, ui: Ui) -> Result<Child> {
    echo_command(ui, &command);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))
}

/// A command whose output lines are read as they come (a watcher), with its
/// stderr kept for when it fails. Killed and reaped when dropped.
pub struct Lines {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// A line taken while looking whether the output had ended.
    early: Option<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

pub fn start_lines(command: Command, ui: Ui) -> Result<Lines> {
    use std::io::{BufRead, Read};
    let mut child = spawn_piped(command, ui)?;
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

fn tee_maybe(from: impl std::io::Read, file: fs::File, show: bool) {
    if show {
        tee(from, file, std::io::stderr());
    } else {
        tee(from, file, std::io::sink());
    }
}

pub fn tee(mut from: impl std::io::Read, mut file: fs::File, mut term: impl std::io::Write) {
    use std::io::Write;
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = file.write_all(&buf[..n]);
        let _ = term.write_all(&buf[..n]);
        let _ = term.flush();
    }
}

/// Wait for a child that the signal handler may stop; kill it at `deadline`.
/// Returns `None` when the deadline passed.
pub fn wait(mut child: Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
    interrupt::watch_child(child.id());
    let out = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    interrupt::watch_child(0);
    Ok(out)
}

/// Run to the end in a process group of its own, so that a second Ctrl-C
/// cannot cut it (teardown).
pub fn output_in_own_group(mut command: Command, ui: Ui) -> Result<Output> {
    echo_command(ui, &command);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))
}

/// Start a daemon that outlives the xtask: in a session of its own, with no
/// input, its output into `log`, and every descriptor it would inherit
/// beyond those three closed (a lock held by whoever ran the xtask, say
/// `flock`, must not live on in the daemon).
pub fn spawn_detached(command: Command, log: &Path) -> Result<()> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // bash, not sh: dash cannot name a descriptor above 9 in a redirection.
    let close_fds = r#"for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done; exec "$@""#;
    let mut detached = Command::new("setsid");
    detached
        .args(["bash", "-c", close_fds, "bash"])
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    // The daemon's own environment, as `command` set it.
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => detached.env(key, value),
            None => detached.env_remove(key),
        };
    }
    let program = command.get_program().to_string_lossy().into_owned();
    detached
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    Ok(())
}

/// Run with the terminal as it is (`logs --follow` wants it).
pub fn status_on_terminal(mut command: Command, ui: Ui) -> Result<ExitStatus> {
    echo_command(ui, &command);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .status()
        .with_context(|| format!("running {program}"))
}

/// Run the commands at once, each with stdout and stderr into its file;
/// how many succeeded. One that cannot start fails the whole call, after
/// the others have been waited for.
pub fn run_all_to_files(commands: Vec<(Command, PathBuf)>) -> Result<usize> {
    let mut children = Vec::new();
    let mut failed = None;
    for (mut command, path) in commands {
        let program = command.get_program().to_string_lossy().into_owned();
        let started = fs::File::create(&path)
            .with_context(|| format!("creating {}", path.display()))
            .and_then(|file| {
                command
                    .stdout(file.try_clone()?)
                    .stderr(file)
                    .spawn()
                    .with_context(|| format!("running {program}"))
            });
        match started {
            Ok(child) => children.push(child),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    let succeeded = children
        .into_iter()
        .filter_map(|mut c| c.wait().ok())
        .filter(ExitStatus::success)
        .count();
    match failed {
        Some(e) => Err(e),
        None => Ok(succeeded),
    }
}

/// `producer | consumer`, both ends checked; the consumer's output is dropped.
pub fn pipe(mut producer: Command, mut consumer: Command) -> Result<()> {
    let program = producer.get_program().to_string_lossy().into_owned();
    let mut child = producer
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let stream = child.stdout.take().context("the producer's output")?;
    let consumer_name = consumer.get_program().to_string_lossy().into_owned();
    let consumed = consumer
        .stdin(stream)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {consumer_name}"))?;
    let produced = child
        .wait()
        .with_context(|| format!("waiting for {program}"))?;
    if !produced.success() {
        bail!("{program} failed ({produced})");
    }
    if !consumed.success() {
        bail!("{consumer_name} failed ({consumed})");
    }
    Ok(())
}

/// The last `n` lines of a file, or a note that it could not be read.
pub fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("({}: {e})", path.display()),
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn a_deadline_stops_the_child() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let start = Instant::now();
        let status = wait(child, Some(Instant::now() + Duration::from_millis(200))).unwrap();
        assert!(status.is_none());
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_background_command_is_followed_to_its_end_or_killed_when_dropped() {
        let dir = std::env::temp_dir().join(format!("xtask-bg-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("bg.log");
        let mut c = Command::new("sh");
        c.args(["-c", "echo started; sleep 0.3; echo done; exit 3"]);
        let bg = start_logged(c, &log, Ui::default()).unwrap();
        let status = bg
            .follow(Ui::default(), Instant::now() + Duration::from_secs(20))
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
    fn a_detached_daemon_gets_the_environment_its_command_was_given() {
        let dir = std::env::temp_dir().join(format!("xtask-detached-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("daemon.log");
        std::env::set_var("XTASK_DETACHED_REMOVED", "inherited");
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo \"$XTASK_DETACHED_SET:${XTASK_DETACHED_REMOVED:-gone}\"",
        ])
        .env("XTASK_DETACHED_SET", "given")
        .env_remove("XTASK_DETACHED_REMOVED");
        spawn_detached(c, &log).unwrap();
        let start = Instant::now();
        while !fs::read_to_string(&log).unwrap().ends_with('\n') {
            assert!(start.elapsed() < Duration::from_secs(10), "never wrote");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(fs::read_to_string(&log).unwrap(), "given:gone\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn commands_run_at_once_into_their_files() {
        let dir = std::env::temp_dir().join(format!("xtask-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let sh = |script: &str| {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        let start = Instant::now();
        let n = run_all_to_files(vec![
            (sh("sleep 1; echo one"), dir.join("1")),
            (sh("sleep 1; echo two >&2; exit 1"), dir.join("2")),
            (sh("sleep 1; echo three"), dir.join("3")),
        ])
        .unwrap();
        assert_eq!(n, 2, "the failed one does not count");
        // One after another would take 3 s.
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "not one after another"
        );
        assert_eq!(fs::read_to_string(dir.join("2")).unwrap(), "two\n");
        let missing = run_all_to_files(vec![
            (Command::new("/nonexistent/program"), dir.join("4")),
            (sh("echo five"), dir.join("5")),
        ]);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/program"));
        assert_eq!(
            fs::read_to_string(dir.join("5")).unwrap(),
            "five\n",
            "the others ran"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pipe_checks_both_ends() {
        let mut ok = Command::new("printf");
        ok.arg("x");
        assert!(pipe(ok, Command::new("cat")).is_ok());
        let err = pipe(Command::new("false"), Command::new("cat")).unwrap_err();
        assert!(err.to_string().contains("false failed"), "{err}");
        let mut ok = Command::new("printf");
        ok.arg("x");
        let err = pipe(ok, Command::new("false")).unwrap_err();
        assert!(err.to_string().contains("false failed"), "{err}");
    }
}
