//! A lock of the checkout, with its holder named: a file under
//! `target/dist-test/` locked with the standard library's file locks (flock),
//! which the kernel releases when the holding process ends, however it ends.
//! So a holder that was killed never blocks anyone; the next command finds
//! the dead holder's name still in the file and says it took over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::interrupt;
use crate::ui::Ui;

/// Who holds a lock, written into the lock file by its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// `cargo xtask dist-test --project …`
    pub command: String,
    pub pid: u32,
    /// Unix seconds.
    pub since: u64,
    /// What it holds the lock for: `building`, `the kept cluster`, …
    pub doing: String,
}

impl Holder {
    /// This process, doing `doing`.
    pub fn me(doing: &str) -> Holder {
        Holder {
            command: this_command(),
            pid: std::process::id(),
            since: now_secs(),
            doing: doing.to_string(),
        }
    }

    /// `` `cargo xtask dist-test` (pid 4242, building, for 12 s) ``
    pub fn describe(&self) -> String {
        format!(
            "`{}` (pid {}, {}, for {} s)",
            self.command,
            self.pid,
            self.doing,
            now_secs().saturating_sub(self.since)
        )
    }
}

/// `cargo xtask` and this process's first arguments, flags included.
fn this_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).take(4).collect();
    let more = if std::env::args().count() > 5 {
        " …"
    } else {
        ""
    };
    format!("cargo xtask {}{more}", args.join(" "))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A held lock; released (and its holder's name cleared) when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    /// A holder that died holding the lock, whose leftovers the new holder
    /// may have to clear.
    pub took_over: Option<Holder>,
    /// How long this process waited for the lock.
    pub waited: Duration,
}

/// What a lock guards, for messages: `this checkout's lock`.
pub struct Named<'a> {
    pub path: PathBuf,
    pub what: &'a str,
}

impl Named<'_> {
    /// Take the lock as `me`. When another process holds it: with `wait`,
    /// say so on one line and wait (Ctrl-C still stops the wait); without,
    /// fail with one line that names the holder.
    pub fn acquire(&self, me: &Holder, wait: bool, ui: Ui) -> Result<Lock> {
        let mut file = open(&self.path)?;
        let start = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", self.path.display()))
                }
            }
            let holder = read_holder(&mut file)
                .map_or("another command of this checkout".to_string(), |h| {
                    h.describe()
                });
            if !wait {
                bail!(
                    "{} is held by {holder}: wait for it to finish, or run without --fail-if-busy to queue behind it",
                    self.what
                );
            }
            if !said {
                ui.say(&format!("waiting for {}, held by {holder}", self.what));
                said = true;
            }
            interrupt::check()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        let waited = start.elapsed();
        if said {
            ui.say(&format!(
                "got {} after {:.1} s",
                self.what,
                waited.as_secs_f64()
            ));
        }
        // A name left in the file is a holder that ended without releasing.
        let took_over = read_holder(&mut file).filter(|h| h.pid != me.pid);
        if let Some(dead) = &took_over {
            ui.say(&format!(
                "took over {} from {}, which ended without releasing it",
                self.what,
                dead.describe()
            ));
        }
        write_holder(&mut file, me)?;
        Ok(Lock {
            file,
            took_over,
            waited,
        })
    }

    /// Who holds it now, if anyone alive does.
    pub fn holder(&self) -> Option<Holder> {
        let mut file = open(&self.path).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(_) => read_holder(&mut file),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Cleared before the kernel lets go: an empty file is a clean release.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn write_holder(file: &mut File, me: &Holder) -> Result<()> {
    let text = serde_json::to_string(me).context("naming the lock's holder")? + "\n";
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(dir: &Path) -> Named<'static> {
        Named {
            path: dir.join("test.lock"),
            what: "the test lock",
        }
    }

    #[test]
    fn a_second_holder_fails_at_once_without_wait_and_names_the_first() {
        let dir = crate::fsx::scratch("lock-busy");
        let lock = named(&dir)
            .acquire(&Holder::me("building"), true, Ui::default())
            .unwrap();
        assert!(lock.took_over.is_none());
        // Another open file description of the same file counts as another holder.
        let err = named(&dir)
            .acquire(&Holder::me("testing"), false, Ui::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the test lock is held by `cargo xtask"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}, building", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--fail-if-busy"), "{err}");
        assert_eq!(err.lines().count(), 1);
        assert_eq!(named(&dir).holder().unwrap().doing, "building");
        drop(lock);
        assert!(named(&dir).holder().is_none(), "released");
        let again = named(&dir)
            .acquire(&Holder::me("x"), false, Ui::default())
            .unwrap();
        assert!(again.took_over.is_none(), "a clean release is no takeover");
    }

    #[test]
    fn a_waiter_gets_the_lock_when_it_is_released() {
        let dir = crate::fsx::scratch("lock-wait");
        let first = named(&dir)
            .acquire(&Holder::me("a"), true, Ui::default())
            .unwrap();
        let d = dir.clone();
        let waiter = std::thread::spawn(move || {
            named(&d)
                .acquire(&Holder::me("b"), true, Ui::default())
                .map(|l| l.waited)
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        let waited = waiter.join().unwrap().unwrap();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
    }

    #[test]
    fn a_holder_that_died_holding_it_never_blocks_and_is_named() {
        let dir = crate::fsx::scratch("lock-dead");
        let path = dir.join("test.lock");
        // A process that takes the lock, names itself, and is killed.
        let script = format!(
            "exec 9>>{p}; flock 9; printf '%s' '{{\"command\":\"cargo xtask dist-test\",\"pid\":1,\"since\":0,\"doing\":\"building\"}}' > {p}; sleep 60",
            p = path.display()
        );
        let mut child = std::process::Command::new("bash")
            .args(["-c", &script])
            .spawn()
            .unwrap();
        let start = Instant::now();
        while named(&dir).holder().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the holder never took it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let lock = named(&dir)
            .acquire(&Holder::me("next"), false, Ui::default())
            .unwrap();
        let dead = lock.took_over.clone().expect("the dead holder is named");
        assert_eq!((dead.pid, dead.doing.as_str()), (1, "building"));
    }
}
