//! Ctrl-C and SIGTERM: stop the running child, then let the normal path tear
//! the cluster down. Nothing exits from inside the handler.

use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILD: AtomicU32 = AtomicU32::new(0);

/// Install once, in `main`.
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pid = CHILD.load(Ordering::SeqCst);
        if pid != 0 {
            // The child may already have had the terminal's SIGINT; a SIGTERM
            // covers a signal sent to the xtask alone.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        eprintln!("\ninterrupted: stopping, then tearing down");
    })
    .context("installing the Ctrl-C handler")
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Bail out between steps once a signal has arrived.
pub fn check() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Wait for a child that the handler may stop; kill it at `deadline`.
/// Returns `None` when the deadline passed.
pub fn wait(mut child: Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
    CHILD.store(child.id(), Ordering::SeqCst);
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
    CHILD.store(0, Ordering::SeqCst);
    Ok(out)
}
