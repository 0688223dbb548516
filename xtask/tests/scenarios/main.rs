//! The xtask's scenarios against a real Docker engine, in one test binary:
//! libtest runs its tests side by side (one thread per core, or
//! `RUST_TEST_THREADS`), where one binary per file ran them one file after
//! another. They can share a checkout because its commands can (the
//! checkout lock serialises builds, runs register what they use, `down
//! --all` leaves runs in progress alone); those that need a checkout of
//! their own make one under `target/xtask-tests/`. Two scenarios keep a
//! binary of their own, which cargo runs alone: `takeover.rs` (no other
//! command may take the checkout lock first) and `late_engine.rs` (a timing
//! race that other clusters on the machine change); and `swarm_lab.rs`,
//! ignored by default (root, three engines). `.cargo/config.toml` sets four test
//! threads (most of a scenario's time is spent waiting on the engine; an
//! environment's `RUST_TEST_THREADS` wins).

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod base;
mod build_failures;
mod check_ci;
mod clean;
mod cluster;
mod doctor;
mod flakes;
mod image;
mod live_source;
mod reliability;
mod report;
mod reqs;
mod testdata;
