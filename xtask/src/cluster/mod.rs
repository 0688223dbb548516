//! The cluster, whatever runs it: what it is ([`spec`]: its size, image and
//! backend), the operations the flow needs of it ([`Cluster`]), and the
//! choice of backend, the one place that knows there are two:
//!
//! - [`compose_cluster`]: the services as a compose project on this engine;
//! - [`swarm_stack`]: the same services as a stack on the Docker Swarm
//!   whose manager `DOCKER_HOST` points at, workers and engines spread over
//!   its nodes.
//!
//! When a cluster is ready is decided once, for both, in [`readiness`].

pub mod attached;
pub mod compose_cluster;
mod contract;
pub mod freshness;
mod named;
pub mod pytest;
pub mod readiness;
pub mod spec;
pub mod state;
pub mod swarm_stack;

pub use contract::{Cluster, FollowedTests, Tests};
pub use named::{from_state, kept, of_checkout, Kept, Named};
pub use readiness::{wait_ready, Readiness, Verdict};

use anyhow::{Context, Result};

use crate::docker::compose::Flavour;
use crate::docker::Docker;
use crate::workspace::Workspace;
use spec::{Definition, Kind};

/// A new cluster on the backend `kind`: the one place that chooses.
pub fn select<'a>(
    ws: &Workspace,
    docker: &Docker<'a>,
    compose: &Flavour,
    kind: Kind,
    def: Definition,
) -> Result<Box<dyn Cluster + 'a>> {
    Ok(match kind {
        Kind::Compose => Box::new(compose_cluster::ComposeCluster::new(
            ws, docker, compose, def, None,
        )),
        Kind::Swarm => Box::new(swarm_stack::SwarmStack::new(ws, docker, def, None)?),
        Kind::Attached => {
            let to = (def.attach.clone()).context("an attached cluster needs its address")?;
            Box::new(attached::Attached::new(ws, docker, def, to))
        }
    })
}
