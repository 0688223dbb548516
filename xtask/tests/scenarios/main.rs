//! The xtask's scenarios against a real Docker engine, in one test binary:
//! libtest runs its tests side by side (`RUST_TEST_THREADS`, four by
//! default, see .cargo/config.toml: most of a scenario's time is spent
//! waiting on the engine). They can share the checkout because its commands
//! can (the checkout lock serialises builds, runs register what they use,
//! `down --all` leaves runs in progress alone); those that need a checkout
//! of their own make one under `target/xtask-tests/`, and every scenario
//! removes what it made there, so that a test run leaves only what a user
//! keeps (the base, the runtime, uv's cache, the main checkout's image of
//! the pinned release).
//!
//! Two tiers. `cargo test --workspace` runs the first: every scenario but
//! a few slow ones, which are `#[ignore]`d as the second tier and run by
//! `.ci/run` with `cargo test -p xtask -- --ignored`: the report in
//! Chromium (`report.rs`, builds a Chromium image), three commands of one
//! checkout at once (`reliability.rs`), repeated edit-and-rebuild cycles
//! (`build_failures.rs`), the late-engine race (`late_engine.rs`, a binary
//! of its own that cargo runs alone, on a Python 3.11 image) and the swarm
//! lab (`swarm_lab.rs`, root, three engines).

#[path = "../common/mod.rs"]
mod common;

mod attach;
mod bad_input;
mod base;
mod build_failures;
mod check_ci;
mod cluster;
mod deadlines;
mod doctor;
mod image;
mod live_source;
mod reliability;
mod report;
mod reqs;
mod testdata;
