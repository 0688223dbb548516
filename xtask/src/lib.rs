//! `cargo xtask`: LiberTEM's distributed test cluster, built, run and torn
//! down in one command. See README.md and docs/dist-tests.md.
//!
//! A library with a thin `main.rs`, so that the tests in `xtask/tests/` use
//! the real types (the label, `Summary`, `ca_bundle`, ...).

pub mod checkout;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod context;
pub mod digest;
pub mod docker;
pub mod downloads;
pub mod exec;
pub mod flow;
pub mod footprint;
pub mod fsx;
pub mod gha;
pub mod history;
pub mod image;
pub mod interrupt;
pub mod junit;
pub mod labels;
pub mod live;
pub mod numba;
pub mod outcome;
pub mod phases;
pub mod project;
pub mod python;
pub mod repeats;
pub mod report;
pub mod reqs;
pub mod run;
pub mod runtime;
pub mod selection;
pub mod summary;
pub mod swarm_lab;
pub mod testdata;
pub mod tools;
pub mod ui;
pub mod workspace;

pub use labels::CHECKOUT_LABEL;
