//! The tests as the stack's one-off service on the manager, followed to
//! their end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::SwarmStack;
use crate::cluster::Tests;
use crate::ui::Ui;

/// The tests' command and the harness's environment besides the stack's.
pub(super) type TestsSpec = (Vec<String>, Vec<(&'static str, String)>);

/// The tests as the stack's one-off service, followed to their end; the
/// service is removed afterwards, so that the next deploy starts it afresh
/// while the others keep running.
pub(super) struct SwarmTests<'s, 'a> {
    pub(super) stack: &'s SwarmStack<'a>,
    pub(super) log: PathBuf,
}

impl Tests for SwarmTests<'_, '_> {
    fn finish(
        self: Box<Self>,
        ui: Ui,
        deadline: Instant,
        tick: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<Option<i32>> {
        let (docker, svc) = (&self.stack.docker, self.stack.service("tests"));
        let ended = loop {
            crate::interrupt::check()?;
            let newest = docker.service_tasks(&svc).into_iter().next();
            if let Some(t) = newest.filter(|t| t.ended()) {
                break Some(docker.task_detail(&t.id).and_then(|d| d.exit_code));
            }
            if tick()? || Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        // Both streams, as they came: pytest's report and whatever Python
        // said on stderr.
        docker.save_service_logs(&[(svc.clone(), self.log.clone())], false)?;
        let text =
            String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned();
        if !ui.quiet {
            eprint!("{text}");
            if !text.is_empty() && !text.ends_with('\n') {
                eprintln!();
            }
        }
        if let Err(e) = docker.service_rm(&svc) {
            eprintln!("error: {e:#}");
        }
        Ok(ended.map(|code| code.unwrap_or(1)))
    }
}
