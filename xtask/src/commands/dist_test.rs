//! `cargo xtask dist-test`: the main job (flow.rs), on compose or a swarm.

use anyhow::Result;

use crate::cli::DistTest;
use crate::cluster::{Kind, Size};
use crate::context::{Invocation, Needs};
use crate::flow::{self, Request};
use crate::testdata::Plan;

impl DistTest {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let req = Request {
            project: &self.project,
            size: Size::from_config(&cx.ws.config.cluster, self.size.workers, self.size.engines),
            publish: self.size.publish,
            kind: if self.swarm {
                Kind::Swarm
            } else {
                Kind::Compose
            },
            data: Plan::from_env(self.data.no_testdata)?,
        };
        flow::dist_test(&cx, req, &self.pytest_args, self.keep)
    }
}
