//! One module per command, each with its `run`; the flow the cluster
//! commands share is flow.rs.

mod check_ci;
mod clean;
mod completions;
mod dist_test;
mod doctor;
mod history;
mod lifecycle;
mod swarm_lab;
mod testdata;
mod update_reqs;
