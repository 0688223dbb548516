//! A program whose output goes to a log (and, with `--verbose`, to the
//! terminal as well), bounded, its log's last lines shown when it fails.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{describe, tail_file, wait};

/// Run a command with its output going to `log` (and to the terminal with
/// `verbose`), stopped at `limit`; on failure, show the log's last lines.
pub fn run_logged(mut command: Command, log: &Path, verbose: bool, limit: Duration) -> Result<()> {
    if verbose {
        eprintln!("$ {command:?}");
    }
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // Waited on through `interrupt`, so that Ctrl-C or SIGTERM stops it.
    let status = if verbose {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().context("child stdout")?;
        let err = child.stderr.take().context("child stderr")?;
        let f2 = file.try_clone()?;
        let t1 = std::thread::spawn(move || tee(out, file, std::io::stdout()));
        let t2 = std::thread::spawn(move || tee(err, f2, std::io::stderr()));
        let status = wait(child, Some(Instant::now() + limit))?;
        let _ = t1.join();
        let _ = t2.join();
        status
    } else {
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        wait(child, Some(Instant::now() + limit))?
    };
    let status = status.with_context(|| {
        format!(
            "`{}` did not finish within {} s",
            describe(&command),
            limit.as_secs()
        )
    })?;
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

/// Copy `from` into `file` and onto `term` as it comes.
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
