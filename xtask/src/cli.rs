//! The command line, from clap's derive. `cargo xtask help` prints it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "LiberTEM's distributed test cluster, in one command"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Echo every docker and compose command, and stream build output.
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors and the final result.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The config file [default: dist-test.toml at the workspace root].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fail at once, naming the holder, when another command of this
    /// checkout holds a lock this one needs (default: wait for it, saying
    /// so). Also accepted as --no-wait, its earlier name.
    #[arg(long, global = true, alias = "no-wait")]
    pub fail_if_busy: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, bring the cluster up, run the `dist` suite, keep results and logs, tear down.
    DistTest(DistTest),
    /// Regenerate the pinned, hashed requirements for the image's Python.
    UpdateReqs(UpdateReqs),
    /// Build the image (only what changed).
    Build(Build),
    /// Build what changed and bring this checkout's cluster up, ready.
    Up(Up),
    /// Every service's state, and workers/engines registered.
    Status(Status),
    /// Show service logs.
    Logs(Logs),
    /// Run the tests container against the running cluster.
    Test(Test),
    /// Remove the cluster: containers, network and volumes.
    Down(Down),
    /// Generate the detector test data set that `dist-test` and `up` mount (cached).
    Testdata(Testdata),
    /// Remove what the harness made on the engine for this checkout (or all).
    Clean(Clean),
    /// Per test: pass rate and median duration over the last runs; flags slowdowns.
    History(History),
    /// Check Docker, compose, BuildKit, the base image, CA bundle and disk.
    Doctor(Doctor),
    /// Lint the GitHub Actions workflow with zizmor (pinned, offline); any finding fails.
    CheckCi(CheckCi),
    /// A test swarm on this machine: Docker engines in network namespaces (Linux, root).
    SwarmLab(SwarmLab),
    /// Print shell completions.
    Completions(Completions),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ProjectArg {
    /// A LiberTEM checkout to test instead of the pinned release.
    #[arg(long, value_name = "PATH", conflicts_with = "libertem")]
    pub project: Option<PathBuf>,
    /// A LiberTEM release from PyPI to test instead of the pinned one: its
    /// sdist, checked against the sha256 PyPI publishes, its dependencies
    /// resolved as of its upload.
    #[arg(long, value_name = "VERSION")]
    pub libertem: Option<String>,
    /// Resolve a `--libertem` release's dependencies as of this date
    /// (RFC 3339 or YYYY-MM-DD) instead of its upload time.
    #[arg(long, value_name = "DATE", requires = "libertem")]
    pub resolve_date: Option<String>,
    /// The Python to test on, like 3.13 [default: the project's own image's,
    /// else the newest the project and this machine support].
    #[arg(long, value_name = "X.Y")]
    pub python: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SizeArgs {
    /// Dask worker hosts (worker-1..N); default from dist-test.toml.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32))]
    pub workers: Option<u32>,
    /// ipyparallel engines (ipy-worker-1..N); default from dist-test.toml.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32))]
    pub engines: Option<u32>,
    /// Publish the scheduler (8786) and its dashboard (8787) on free ports of
    /// 127.0.0.1, and print them. Nothing is published without it.
    #[arg(long)]
    pub publish: bool,
}

/// Which detector data the cluster mounts at `/data`.
#[derive(Debug, Args, Clone, Default)]
pub struct DataArgs {
    /// Mount an empty folder instead of the generated detector files (the
    /// tests that need them skip). A set `TESTDATA_BASE_PATH` always wins.
    #[arg(long)]
    pub no_testdata: bool,
}

#[derive(Debug, Args)]
pub struct DistTest {
    #[command(flatten)]
    pub project: ProjectArg,
    #[command(flatten)]
    pub size: SizeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Keep the cluster afterwards as this checkout's kept cluster: `status`,
    /// `logs`, `test` and `down` address it as one started with `up` (not
    /// when a service of it died, or a signal ended the run).
    #[arg(long)]
    pub keep: bool,
    /// Keep the cluster (as --keep does) only when the run did not pass.
    #[arg(long, conflicts_with = "keep")]
    pub keep_on_failure: bool,
    /// Each test's deadline in seconds (default: timeouts.test_s of
    /// dist-test.toml); past it the cluster's stacks are kept and the test
    /// fails as timed out.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_timeout: Option<u64>,
    /// Deploy the cluster as a stack on the Docker Swarm whose manager
    /// DOCKER_HOST points at (see docs/swarm.md), workers and engines spread
    /// over its nodes.
    #[arg(long, conflicts_with = "publish")]
    pub swarm: bool,
    #[command(flatten)]
    pub attach: AttachArgs,
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// With --repeat or --until-failure: a new cluster for each pass
    /// (built once), to catch what goes wrong while a cluster starts.
    #[arg(long, requires = "passes")]
    pub fresh: bool,
    /// Extra arguments for pytest, after `--`.
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

/// A cluster the user already runs (docs/attach.md).
#[derive(Debug, Args, Clone, Default)]
pub struct AttachArgs {
    /// Run the tests against a Dask scheduler and an ipyparallel controller
    /// you already run, after checking that its workers and engines run the
    /// tests' versions; nothing of it is started, restarted or removed.
    /// Where it is: the flags below, else [attach] of dist-test.toml.
    #[arg(long, conflicts_with_all = ["swarm", "publish", "keep", "keep_on_failure", "fresh"])]
    pub attach: bool,
    /// The Dask scheduler, as the tests' container reaches it (tcp://HOST:8786).
    #[arg(long, value_name = "ADDRESS", requires = "attach")]
    pub scheduler: Option<String>,
    /// The controller's ipcontroller-client.json.
    #[arg(long, value_name = "FILE", requires = "attach")]
    pub ipython_client: Option<std::path::PathBuf>,
    /// A Docker network for the tests' container to join (the cluster's).
    #[arg(long, value_name = "NAME", requires = "attach")]
    pub network: Option<String>,
    /// The scratch folder the dist tests share with the workers, at the
    /// same path there (default: target/dist-test/attach/temp_data).
    #[arg(long, value_name = "PATH", requires = "attach")]
    pub scratch: Option<std::path::PathBuf>,
}

/// Flake hunting: the selection passed several times.
#[derive(Debug, Args, Clone, Default)]
#[group(id = "passes", multiple = true)]
pub struct RepeatArgs {
    /// Pass the selection N times, each in a new pytest process, and report
    /// per test its runs, pass rate, durations and a verdict (flaky: both
    /// passed and failed).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: Option<u32>,
    /// Stop after the first pass in which a test failed, with that
    /// cluster's logs kept (at most --repeat passes; 100 without it).
    #[arg(long)]
    pub until_failure: bool,
}

#[derive(Debug, Args)]
pub struct UpdateReqs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Upgrade every package instead of keeping existing pins.
    #[arg(long, conflicts_with_all = ["upgrade_package", "check"])]
    pub upgrade: bool,
    /// Upgrade only these packages.
    #[arg(long, value_name = "NAME", num_args = 1.., conflicts_with = "check")]
    pub upgrade_package: Vec<String>,
    /// Do not write: fail if the file does not match its inputs (no network needed).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct Build {
    #[command(flatten)]
    pub project: ProjectArg,
}

#[derive(Debug, Args)]
pub struct Up {
    #[command(flatten)]
    pub project: ProjectArg,
    #[command(flatten)]
    pub size: SizeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Deploy it as a stack on the Docker Swarm whose manager DOCKER_HOST
    /// points at (see docs/swarm.md); `status`, `logs`, `test` and `down`
    /// then address that stack.
    #[arg(long, conflicts_with = "publish")]
    pub swarm: bool,
}

#[derive(Debug, Args)]
pub struct Status {
    /// Expect the cluster to be a swarm stack (`up --swarm`); without it,
    /// whichever kind `up` started.
    #[arg(long)]
    pub swarm: bool,
}

#[derive(Debug, Args)]
pub struct Logs {
    /// Services to show (default: all).
    pub services: Vec<String>,
    /// Keep following the output.
    #[arg(long, short)]
    pub follow: bool,
    /// Expect the cluster to be a swarm stack (`up --swarm`).
    #[arg(long)]
    pub swarm: bool,
}

#[derive(Debug, Args)]
pub struct Test {
    /// Expect the cluster to be a swarm stack (`up --swarm`).
    #[arg(long)]
    pub swarm: bool,
    /// Run the selection again after each change to the project's source
    /// (its `.py` files), until Ctrl-C.
    #[arg(long, conflicts_with_all = ["repeat", "until_failure"])]
    pub watch: bool,
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// Each test's deadline in seconds (default: timeouts.test_s of
    /// dist-test.toml).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_timeout: Option<u64>,
    /// Extra arguments for pytest, after `--`.
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Down {
    /// Remove every cluster this checkout started, including ones left by killed runs.
    #[arg(long)]
    pub all: bool,
    /// Expect the cluster to be a swarm stack (`up --swarm`).
    #[arg(long)]
    pub swarm: bool,
}

#[derive(Debug, Args)]
pub struct Testdata {
    #[command(flatten)]
    pub project: ProjectArg,
}

#[derive(Debug, Args)]
pub struct Clean {
    /// Every checkout's, including those whose folder is gone, and what
    /// checkouts share: nothing of the harness stays on the engine.
    #[arg(long)]
    pub all: bool,
    /// List what would be removed, with sizes, and what is kept; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also this checkout's downloads under target/dist-test (the sdist, uv,
    /// debootstrap, zizmor).
    #[arg(long)]
    pub downloads: bool,
}

#[derive(Debug, Args)]
pub struct History {
    /// Only the tests whose id contains this (e.g. `test_raw.py`).
    #[arg(value_name = "TEST")]
    pub test: Option<String>,
    /// How many of the latest runs to look at.
    #[arg(long, value_name = "K", default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..))]
    pub last: u32,
    /// Flag a test whose latest median is more than this many times its
    /// median over the runs before.
    #[arg(long, value_name = "F", default_value_t = 1.5)]
    pub factor: f64,
    /// ... and more than this many seconds slower than it: a short test
    /// jitters by more than the factor on a busy machine.
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    pub min_seconds: f64,
}

#[derive(Debug, Args)]
pub struct Doctor {}

#[derive(Debug, Args)]
pub struct CheckCi {
    /// The workflow to lint [default: ci/dist-tests.yml].
    #[arg(long, value_name = "PATH")]
    pub workflow: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SwarmLab {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Start the nodes' engines, join them into a swarm, write the env file.
    Up {
        /// How many nodes (engines); node 1 is the manager.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=8))]
        nodes: u32,
    },
    /// Remove every engine, namespace and file of the lab; safe to repeat.
    Down,
}

#[derive(Debug, Args)]
pub struct Completions {
    /// bash, zsh, fish, elvish or powershell
    pub shell: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn pytest_args_after_double_dash() {
        let cli =
            Cli::try_parse_from(["xtask", "dist-test", "--keep", "--", "-k", "raw", "-x"]).unwrap();
        let Command::DistTest(d) = cli.command else {
            panic!()
        };
        assert!(d.keep);
        assert_eq!(d.pytest_args, ["-k", "raw", "-x"]);
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(Cli::try_parse_from(["xtask", "up", "--workers", "0"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "up", "--workers", "3", "--engines", "3"]).is_ok());
    }
}
