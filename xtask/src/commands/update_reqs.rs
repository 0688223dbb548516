//! `cargo xtask update-reqs`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::checkout;
use crate::cli::UpdateReqs;
use crate::context::Invocation;
use crate::project::{self, Project};
use crate::reqs::{self, Upgrade};

impl UpdateReqs {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let (sh, ui) = (&inv.sh, inv.ui);
        let ws = inv.workspace()?;
        if self.check {
            // Checking needs neither the sdist nor the network.
            let project = match &self.project.project {
                Some(p) => Project {
                    dir: project::checkout(p)?,
                    default: false,
                },
                None => Project {
                    dir: PathBuf::new(),
                    default: true,
                },
            };
            reqs::check(&ws, &project)?;
            ui.say(&format!(
                "{} is up to date",
                reqs::requirements_path(&ws, &project).display()
            ));
            return Ok(());
        }
        // The checkout lock, as the build takes it: both write the
        // requirements and unpack the sdist.
        let _lock = checkout::lock_files(&ws, "resolving requirements", inv.wait, ui)?;
        let project = Project::resolve(sh, &ws, ui, self.project.project.as_deref())?;
        let upgrade = if self.upgrade {
            Upgrade::All
        } else if !self.upgrade_package.is_empty() {
            Upgrade::Packages(self.upgrade_package.clone())
        } else {
            Upgrade::None
        };
        let start = Instant::now();
        let path = reqs::update(sh, &ws, ui, &project, &upgrade)?;
        ui.say(&format!(
            "wrote {} in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}
