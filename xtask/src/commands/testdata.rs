//! `cargo xtask testdata`: the generated detector data set, made once in the
//! image (see `testdata.rs`) and reported with its size.

use anyhow::Result;

use crate::checkout;
use crate::cli::Testdata;
use crate::context::{Invocation, Needs};
use crate::flow::project_and_reqs;
use crate::image;
use crate::phases::Phases;
use crate::testdata::{self, size_of};

impl Testdata {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let _lock = checkout::lock(&cx.ws, &cx.docker, "generating the test data", cx.wait)?;
        let dir = testdata::set_dir(&cx.ws)?;
        if !dir.join(".complete").is_file() {
            // The generator runs in the image: build what changed first.
            let (project, reqs) = project_and_reqs(&cx, &self.project)?;
            let mut phases = Phases::default();
            let log = cx.ws.target.join("build.log");
            let image = phases.time("build", cx.ui, || {
                image::build(&cx.docker, &cx.ws, &project, &reqs, &log)
            })?;
            phases.time("testdata", cx.ui, || {
                testdata::generate(
                    &cx.docker,
                    &cx.ws,
                    testdata::RunsOn {
                        image: &image.id,
                        runtime: &image.runtime,
                    },
                    None,
                )
            })?;
        }
        let (files, bytes) = size_of(&dir);
        println!(
            "test data: {files} files, {:.0} MB in {}",
            bytes as f64 / 1e6,
            dir.display()
        );
        Ok(())
    }
}
