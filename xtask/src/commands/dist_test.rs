//! `cargo xtask dist-test`: the main job (flow.rs), on compose or a swarm.

use anyhow::Result;

use crate::cli::DistTest;
use crate::cluster::attached::AttachTo;
use crate::cluster::spec::Kind;
use crate::config::AttachCfg;
use crate::context::{Invocation, Needs};
use crate::flow::{self, Keep, Request};
use crate::run::repeat::Plan;

impl DistTest {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let mut req = Request::from_args(&cx, &self.project, &self.size, &self.data, self.swarm)?;
        req.test_s = self.test_timeout;
        if self.attach.attach {
            let a = self.attach;
            let flags = AttachCfg {
                scheduler: a.scheduler,
                ipython_client: a.ipython_client,
                network: a.network,
                scratch: a.scratch,
            };
            let scratch = cx.ws.target.join("attach").join("temp_data");
            req.attach = Some(AttachTo::resolve(flags, &cx.ws.config.attach, &scratch)?);
            req.kind = Kind::chosen(self.swarm, true);
        }
        let plan = Plan::of(&self.repeat, self.fresh);
        let keep = Keep::of(self.keep, self.keep_on_failure);
        flow::dist_test(&cx, req, &self.pytest_args, keep, plan)
    }
}
