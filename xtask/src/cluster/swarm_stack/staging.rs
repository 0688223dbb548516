//! What a stack's services read that is not in the image, brought where
//! they run before the stack is deployed: the data into the shared folder,
//! the source into each node's volume, the controller's file into each
//! engine's container.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{connection, nodes, SwarmStack};
use crate::cluster::spec::Phase;
use crate::cluster::Cluster;
use crate::fsx;

impl SwarmStack<'_> {
    /// Each node's copy of the source, for this stack.
    pub(super) fn source_volume(&self) -> String {
        format!("{}_source", self.def.name)
    }

    /// The data into the shared folder (when it is the checkout's own) and
    /// the source into every worker node's volume: what the services read
    /// that is not in the image. Once per process: `test` on a kept
    /// stack does it again, before the workers that loaded an edited file
    /// restart.
    pub(super) fn stage(&self) -> Result<()> {
        if self.staged.replace(true) {
            return Ok(());
        }
        if self.data != self.def.mounts.data {
            crate::live::status("copying the test data into the shared folder", None);
            fsx::mirror(&self.def.mounts.data, &self.data)
                .context("copying the test data into the shared folder")?;
        }
        crate::live::status("copying the source to the nodes", None);
        let engines = nodes::worker_engines(&self.docker, &self.nodes)?;
        let m = &self.def.mounts;
        let what = (
            m.source.as_path(),
            self.source_volume(),
            &self.def.image.tag,
        );
        nodes::send_source(
            &self.docker,
            &engines,
            (what.0, &what.1, what.2),
            std::slice::from_ref(&self.label),
        )
    }

    /// The controller's connection file into every engine's container
    /// (connection.rs), within ready_s.
    pub(super) fn connect_engines(&self) -> Result<()> {
        let engines = nodes::worker_engines(&self.docker, &self.nodes)?;
        let services: Vec<String> = (self.def.size.engine_services().iter())
            .map(|s| self.service(s))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(self.ready_s);
        let ended = || {
            let states = self.services().unwrap_or_default();
            states.iter().any(|s| s.phase == Phase::Ended)
        };
        connection::deliver(&engines, &self.ipython, services, deadline, &ended)
    }
}
