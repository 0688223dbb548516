//! Running programs: the `$ cmd` echo, output to a log (and the terminal),
//! deadlines, and waiting so that Ctrl-C or SIGTERM stops the child. Every
//! spawn of the crate goes through here, built with xshell's `cmd!` or as a
//! `std::process::Command`; every wait has a bound (a query's
//! [`QUERY`], a build's or a test run's from the config), so that no
//! command of the harness can wait forever on a child. The one exception is
//! a command that runs on the terminal for the user (`logs --follow`),
//! which Ctrl-C ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::interrupt;
use crate::ui::Ui;

mod captured;
mod logged;
mod pipe;
mod stream;

pub use captured::read_fed;
use captured::{checked, output_fed};

pub use logged::run_logged;
pub use pipe::pipe;
pub use stream::{start_lines, start_logged, start_logged_tethered, Background, Lines};

/// The bound on a short query (an inspect, a listing, a removal): a Docker
/// engine that does not answer in this time is not going to.
pub const QUERY: Duration = Duration::from_secs(120);

fn echo_command(ui: Ui, command: &Command) {
    if ui.verbose {
        eprintln!("$ {command:?}");
    }
}

/// `docker image inspect`: the program's name and its first words, for messages.
pub fn describe(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let words: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| !a.starts_with('-'))
        .take(2)
        .map(|a| crate::live::fit(&a, 32))
        .collect();
    std::iter::once(program)
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run to the end with no input, its output and errors read; stopped at
/// `limit`, which is an error that names the command.
pub fn output(command: impl Into<Command>, limit: Duration, ui: Ui) -> Result<Output> {
    output_fed(command.into(), None, limit, ui)
}

/// [`output`]'s stdout as text; a failure is an error with its last words.
pub fn read(command: impl Into<Command>, limit: Duration, ui: Ui) -> Result<String> {
    let command: Command = command.into();
    let what = describe(&command);
    let out = output(command, limit, ui)?;
    checked(&what, out)
}

/// [`read`], output dropped.
pub fn run(command: impl Into<Command>, limit: Duration, ui: Ui) -> Result<()> {
    read(command, limit, ui).map(drop)
}

/// Whether it ran and exited 0 within `limit`.
pub fn succeeds(command: impl Into<Command>, limit: Duration, ui: Ui) -> bool {
    output(command, limit, ui).is_ok_and(|o| o.status.success())
}

/// Wait for a child that the signal handler may stop; kill it at `deadline`.
/// Returns `None` when the deadline passed.
pub fn wait(child: Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
    wait_watching(child, deadline, &mut || Ok(false))
}

/// [`wait`], with `tick` called about every 50 ms while the child runs: it
/// may do work of its own, and stops the child (as the deadline does) when
/// it returns `true`.
pub fn wait_watching(
    mut child: Child,
    deadline: Option<Instant>,
    tick: &mut dyn FnMut() -> Result<bool>,
) -> Result<Option<ExitStatus>> {
    interrupt::watch_child(child.id());
    let out = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        let stop = match tick() {
            Ok(stop) => stop,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                interrupt::watch_child(0);
                return Err(e);
            }
        };
        if stop || deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    interrupt::watch_child(0);
    if let Some(status) = &out {
        interrupt::note_child_status(status);
    }
    Ok(out)
}

/// [`output`] in a process group of its own, so that a second Ctrl-C
/// cannot cut it (teardown).
pub fn output_in_own_group(command: impl Into<Command>, limit: Duration, ui: Ui) -> Result<Output> {
    let mut command: Command = command.into();
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    output(command, limit, ui)
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

/// Wait for a child without making it the one a signal stops (several
/// run at once); kill it at `deadline`. `None` when the deadline passed.
fn wait_unwatched(mut child: Child, deadline: Instant) -> Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            interrupt::note_child_status(&status);
            return Ok(Some(status));
        }
        if Instant::now() >= deadline || interrupt::interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Install once, in `main`: on Ctrl-C or SIGTERM, mark the run interrupted
/// and stop the child being waited for; the normal path then tears down.
pub fn stop_on_signals() -> Result<()> {
    ctrlc::set_handler(|| {
        interrupt::set_interrupted();
        let pid = interrupt::watched_child();
        if pid != 0 {
            // The child may already have had the terminal's SIGINT; a SIGTERM
            // covers a signal sent to the xtask alone.
            kill(pid, "TERM", Ui::default());
        }
        eprintln!("\ninterrupted: stopping, then tearing down");
    })
    .context("installing the Ctrl-C handler")
}

/// Send `signal` (`TERM`, `KILL`) to process `pid`; whether it was sent.
/// `kill` returns at once; it is not watched as the child a signal stops
/// (the signal handler itself calls this).
pub fn kill(pid: u32, signal: &str, ui: Ui) -> bool {
    let mut command = Command::new("kill");
    command
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    echo_command(ui, &command);
    command.status().is_ok_and(|s| s.success())
}

/// Run with the terminal as it is (`logs --follow` wants it).
pub fn status_on_terminal(mut command: Command, ui: Ui) -> Result<ExitStatus> {
    echo_command(ui, &command);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .status()
        .with_context(|| format!("running {program}"))
}

/// Run the commands at once, each with stdout and stderr into its file,
/// each stopped at `limit`; how many succeeded. One that cannot start fails
/// the whole call, after the others have been waited for.
pub fn run_all_to_files(commands: Vec<(Command, PathBuf)>, limit: Duration) -> Result<usize> {
    let mut children = Vec::new();
    let mut failed = None;
    for (mut command, path) in commands {
        let program = command.get_program().to_string_lossy().into_owned();
        let started = fs::File::create(&path)
            .with_context(|| format!("creating {}", path.display()))
            .and_then(|file| {
                command
                    .stdin(Stdio::null())
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
    let deadline = Instant::now() + limit;
    let succeeded = children
        .into_iter()
        .filter_map(|c| wait_unwatched(c, deadline).ok().flatten())
        .filter(ExitStatus::success)
        .count();
    match failed {
        Some(e) => Err(e),
        None => Ok(succeeded),
    }
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
        let n = run_all_to_files(
            vec![
                (sh("sleep 1; echo one"), dir.join("1")),
                (sh("sleep 1; echo two >&2; exit 1"), dir.join("2")),
                (sh("sleep 1; echo three"), dir.join("3")),
            ],
            QUERY,
        )
        .unwrap();
        assert_eq!(n, 2, "the failed one does not count");
        // One after another would take 3 s.
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "not one after another"
        );
        assert_eq!(fs::read_to_string(dir.join("2")).unwrap(), "two\n");
        let missing = run_all_to_files(
            vec![
                (Command::new("/nonexistent/program"), dir.join("4")),
                (sh("echo five"), dir.join("5")),
            ],
            QUERY,
        );
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
}
