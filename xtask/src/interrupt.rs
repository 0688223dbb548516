//! Ctrl-C and SIGTERM: stop the running child, then let the normal path tear
//! the cluster down. Nothing exits from inside the handler (installed by
//! `exec::stop_on_signals`), which only sets the flag kept here and signals
//! the child `exec::wait` is waiting for.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::{bail, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILD: AtomicU32 = AtomicU32::new(0);

/// A signal arrived (set by the handler `exec::stop_on_signals` installs).
pub(crate) fn set_interrupted() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The child a signal should stop, `0` when none runs.
pub(crate) fn watched_child() -> u32 {
    CHILD.load(Ordering::SeqCst)
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

/// A child that ended by SIGINT or SIGTERM had the signal meant for this
/// process group too: the run is interrupted, even when the child's end is
/// seen before the handler's thread has set the flag (a Ctrl-C during a
/// one-second step otherwise ended as a failure, exit 1, not 130).
pub(crate) fn note_child_status(status: &std::process::ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    if matches!(status.signal(), Some(2 | 15)) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
}

/// The child a signal should stop (`0`: none). Set by `exec::wait` only.
pub(crate) fn watch_child(pid: u32) {
    CHILD.store(pid, Ordering::SeqCst);
}
