//! A program run to its end with its output and errors read, and
//! optionally something on its input.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{describe, echo_command, tail, wait};
use crate::ui::Ui;

/// [`read`] with `input` on the command's standard input (a secret that
/// must not show in a process listing, as an argument would).
pub fn read_fed(
    command: impl Into<Command>,
    input: &[u8],
    limit: Duration,
    ui: Ui,
) -> Result<String> {
    let command: Command = command.into();
    let what = describe(&command);
    let out = output_fed(command, Some(input.to_vec()), limit, ui)?;
    checked(&what, out)
}

pub(super) fn output_fed(
    command: Command,
    input: Option<Vec<u8>>,
    limit: Duration,
    ui: Ui,
) -> Result<Output> {
    use std::io::Read;
    let what = describe(&command);
    let mut child = spawn_piped(command, input.is_some(), ui)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written from a thread of its own: a child that does not read
        // cannot hold us past the deadline.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
    }
    let drain = |mut from: Box<dyn std::io::Read + Send>| {
        let (send, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            let _ = send.send(buf);
        });
        got
    };
    let out = drain(Box::new(child.stdout.take().context("the child's output")?));
    let err = drain(Box::new(child.stderr.take().context("the child's errors")?));
    let status = wait(child, Some(Instant::now() + limit))?;
    // A grandchild that kept the pipes open must not hold us either.
    let take = |got: std::sync::mpsc::Receiver<Vec<u8>>| {
        got.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
    };
    let (stdout, stderr) = (take(out), take(err));
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!("`{what}` did not finish within {} s", limit.as_secs()),
    }
}

pub(super) fn checked(what: &str, out: Output) -> Result<String> {
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("`{what}` failed ({}): {}", out.status, tail(err.trim(), 3));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Started with no input (or a pipe from us, `fed`) and its output and
/// errors piped to us.
fn spawn_piped(mut command: Command, fed: bool, ui: Ui) -> Result<Child> {
    echo_command(ui, &command);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(if fed { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))
}
