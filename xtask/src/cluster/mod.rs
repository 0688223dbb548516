//! A cluster of the dist-test: what it is ([`Spec`], [`Size`]), the handle
//! on its compose project ([`Cluster`]), when it is ready ([`Readiness`]),
//! and removal by label ([`sweep`]).

mod handle;
mod pytest;
mod readiness;
mod spec;
mod sweep;

pub use handle::{
    declare_ready, exit_code_of, parse_ps, Cluster, Container, Mounts, TIMELINE_FILE,
};
pub use pytest::{pytest_command, pytest_command_naming, PytestTimes, Timeline};
pub use readiness::{ready_hosts, Readiness, Verdict};
pub use spec::{size_file_text, Size, Spec};
pub use sweep::{checkout_projects, sweep};

/// The label compose puts on everything of a project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
