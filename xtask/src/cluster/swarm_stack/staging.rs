//! What a stack's services read that is not in the image, brought where
//! they run before the stack is deployed: the data into the shared folder,
//! the source into each node's volume, the controller's file into each
//! engine's container.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{connection, nodes, shared, SwarmStack, SHARED_VAR};
use crate::cluster::spec::Phase;
use crate::cluster::Cluster;
use crate::fsx;

impl<'a> SwarmStack<'a> {
    /// The engines of the nodes besides the manager: asked when the stack
    /// was made, or on first need for a kept one.
    pub(super) fn others(&self) -> Result<&[String]> {
        if self.others.get().is_none() {
            let found = nodes::other_engines(&self.docker, &self.nodes)?;
            let _ = self.others.set(found);
        }
        Ok(self.others.get().map(Vec::as_slice).unwrap_or_default())
    }

    /// The engines of the nodes that run workers and engines.
    pub(super) fn worker_engines(&self) -> Result<Vec<nodes::NodeEngine<'a>>> {
        Ok(nodes::worker_engines(&self.docker, self.others()?))
    }

    /// Each node's copy of the source, for this stack.
    pub(super) fn source_volume(&self) -> String {
        format!("{}_source", self.def.name)
    }

    /// The data into the shared folder (when it is the checkout's own),
    /// a check that every worker node sees that folder, and the source
    /// into every worker node's volume: what the services read that is
    /// not in the image. Once per process: `test` on a kept stack does it
    /// again, before the workers that loaded an edited file restart.
    pub(super) fn stage(&self) -> Result<()> {
        if self.staged.replace(true) {
            return Ok(());
        }
        if self.data != self.def.mounts.data {
            crate::live::status("copying the test data into the shared folder", None);
            fsx::mirror(&self.def.mounts.data, &self.data)
                .context("copying the test data into the shared folder")?;
        }
        let engines = self.worker_engines()?;
        let image = self.def.image.tag.as_str();
        if let (Some(root), Some(own)) = (&self.shared, self.temp.parent()) {
            fsx::write_atomic(&own.join(shared::MARK), self.def.name.as_bytes())?;
            let var = format!("{SHARED_VAR}={}", root.display());
            nodes::check_shared(&engines, own, image, &var)?;
        }
        crate::live::status("copying the source to the nodes", None);
        let (source, volume) = (self.def.mounts.source.as_path(), self.source_volume());
        let label = std::slice::from_ref(&self.label);
        nodes::send_source(&engines, (source, &volume, image), label)
    }

    /// The controller's connection file into every engine's container
    /// (connection.rs), within ready_s.
    pub(super) fn connect_engines(&self) -> Result<()> {
        let engines = self.worker_engines()?;
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

    /// After `stack rm`: the source copies on the nodes, the controller's
    /// folder, the scratch folder and the stack's own folder in the shared
    /// one, each tried whatever failed before it.
    pub(super) fn remove_staged(&self) -> Result<()> {
        let mut failed = Vec::new();
        let volume = self.source_volume();
        let removed = self
            .worker_engines()
            .and_then(|engines| nodes::remove_source(&engines, &volume));
        if let Err(e) = removed {
            failed.push(format!(
                "the copies of the source ({volume}) stay on the nodes ({e:#}); remove them \
                 there with `docker volume rm {volume}`"
            ));
        }
        // The controller's folder, the scratch folder, and the stack's own
        // folder in the shared one.
        let own = self.temp.parent().filter(|p| p.ends_with(&self.def.name));
        for dir in [Some(self.ipython.as_path()), Some(self.temp.as_path()), own] {
            if let Err(e) = dir.map_or(Ok(()), fsx::remove_dir) {
                failed.push(format!("{e:#}"));
            }
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("; "));
        }
        Ok(())
    }
}
