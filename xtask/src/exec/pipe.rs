//! `producer | consumer`: two programs joined by a pipe, each end checked,
//! neither left waiting on the other.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{describe, tail};
use crate::interrupt;

/// The signal a process gets when it writes into a pipe nobody reads.
const SIGPIPE: i32 = 13;

/// How long a producer may go on once the consumer of its output has gone.
const PIPE_GRACE: Duration = Duration::from_secs(5);

/// `producer | consumer`, both ends checked, stopped at `limit`; the
/// consumer's output is dropped, its errors kept for the message. Our copy
/// of the pipe's read end is closed as soon as the consumer has it, so a
/// consumer that exits early leaves the producer writing into a pipe with
/// no reader (it fails); one that does not write any more is stopped
/// [`PIPE_GRACE`] after the consumer went. Either way the error names both.
pub fn pipe(mut producer: Command, mut consumer: Command, limit: Duration) -> Result<()> {
    let (p_name, c_name) = (describe(&producer), describe(&consumer));
    let mut prod = producer
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {p_name}"))?;
    let stream = prod.stdout.take().context("the producer's output")?;
    consumer
        .stdin(stream)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawned = consumer.spawn();
    // The Command holds the read end it was given: drop it now, so that
    // only the consumer reads the pipe.
    drop(consumer);
    let mut cons = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = prod.kill();
            let _ = prod.wait();
            return Err(e).with_context(|| format!("running {c_name}"));
        }
    };
    let errors = cons.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
            text
        })
    });
    let ended = wait_pair(&mut prod, &mut cons, Instant::now() + limit);
    let said = errors
        .and_then(|h| h.join().ok())
        .map(|t| tail(t.trim(), 3))
        .unwrap_or_default();
    let (produced, consumed) = ended?;
    let early = |c: &ExitStatus| {
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        format!(
            "{c_name} exited ({c}) before {p_name} had sent everything; {p_name} was stopped{said}"
        )
    };
    match (produced, consumed) {
        (Ended::Exited(p), Ended::Exited(c)) if p.success() && c.success() => Ok(()),
        // The producer wrote into a pipe nobody read any more.
        (Ended::Exited(p), Ended::Exited(c)) if p.signal() == Some(SIGPIPE) => {
            bail!("{}", early(&c))
        }
        (Ended::Stopped, Ended::Exited(c)) => bail!("{}", early(&c)),
        (Ended::Exited(p), Ended::Exited(c)) if c.success() => {
            bail!("{p_name} failed ({p}); {c_name} read what it sent")
        }
        (Ended::Exited(_), Ended::Exited(c)) => {
            bail!("{c_name} failed ({c}) reading from {p_name}: {said}")
        }
        _ => bail!(
            "{p_name} | {c_name} did not finish within {} s, or was interrupted; both were stopped",
            limit.as_secs()
        ),
    }
}

/// How a child of [`pipe`] ended.
#[derive(Clone)]
enum Ended {
    Exited(ExitStatus),
    /// Killed by us: the consumer had gone, the time was up, or a signal came.
    Stopped,
}

/// Wait for both ends of a pipe; see [`pipe`].
fn wait_pair(prod: &mut Child, cons: &mut Child, deadline: Instant) -> Result<(Ended, Ended)> {
    let mut produced = None;
    let mut consumed = None;
    let mut consumer_gone_at: Option<Instant> = None;
    loop {
        if produced.is_none() {
            produced = prod.try_wait()?.map(Ended::Exited);
        }
        if consumed.is_none() {
            if let Some(status) = cons.try_wait()? {
                consumed = Some(Ended::Exited(status));
                consumer_gone_at = Some(Instant::now());
            }
        }
        if let (Some(p), Some(c)) = (&produced, &consumed) {
            return Ok((p.clone(), c.clone()));
        }
        let out_of_time = Instant::now() >= deadline || interrupt::interrupted();
        let orphaned = consumer_gone_at.is_some_and(|t| t.elapsed() >= PIPE_GRACE);
        if out_of_time || orphaned {
            for (child, end) in [(&mut *prod, &mut produced), (&mut *cons, &mut consumed)] {
                if end.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                    *end = Some(Ended::Stopped);
                }
            }
            return Ok((
                produced.unwrap_or(Ended::Stopped),
                consumed.unwrap_or(Ended::Stopped),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    #[test]
    fn pipe_checks_both_ends() {
        let mut ok = Command::new("printf");
        ok.arg("x");
        assert!(pipe(ok, Command::new("cat"), LIMIT).is_ok());
        let err = pipe(Command::new("false"), Command::new("cat"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("false failed"), "{err}");
        // A consumer that fails: whether it went before the producer wrote
        // (which then dies of SIGPIPE) or after, it is the one named.
        let mut ok = Command::new("printf");
        ok.arg("x");
        let err = pipe(ok, Command::new("false"), LIMIT)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("false failed")
                || err.contains("false exited (exit status: 1) before printf"),
            "{err}"
        );
    }

    #[test]
    fn a_reader_that_exits_at_once_ends_its_writer_within_seconds() {
        // `yes` writes for ever; `true` reads nothing and exits.
        let start = Instant::now();
        let err = pipe(Command::new("yes"), Command::new("true"), LIMIT).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert!(
            msg.contains("yes") && msg.contains("true"),
            "names both: {msg}"
        );
        // A writer that goes quiet instead of writing is stopped after the grace.
        let start = Instant::now();
        let mut quiet = Command::new("sh");
        quiet.args(["-c", "exec sleep 60"]);
        let mut reader = Command::new("sh");
        reader.args(["-c", "echo gone >&2; exit 3"]);
        let err = pipe(quiet, reader, LIMIT).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            start.elapsed() < PIPE_GRACE + Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(
            msg.contains("had sent everything") && msg.contains("was stopped"),
            "{msg}"
        );
        assert!(msg.contains("gone"), "the reader's own words: {msg}");
    }

    #[test]
    fn a_pipe_that_takes_too_long_is_stopped() {
        let start = Instant::now();
        let mut slow = Command::new("sleep");
        slow.arg("60");
        let err = pipe(slow, Command::new("cat"), Duration::from_millis(300)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(
            format!("{err:#}").contains("did not finish within"),
            "{err:#}"
        );
    }
}
