//! Paths and names that belong to this checkout.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{self, Config};
use crate::digest::sha256_bytes;
use crate::docker::compose::project_name;

/// Where the checkout is, and which config file to read.
#[derive(Debug, Clone)]
pub struct Location {
    pub root: PathBuf,
    pub config: PathBuf,
}

impl Location {
    /// The checkout this xtask was built in, and `--config FILE` (relative
    /// to the current folder) or its `dist-test.toml`.
    pub fn new(config: Option<&Path>) -> Result<Location> {
        let root = workspace_root();
        let config = match config {
            Some(p) => std::env::current_dir()?.join(p),
            None => root.join(config::FILE_NAME),
        };
        Ok(Location { root, config })
    }
}

/// The checkout this xtask was built in. `XTASK_WORKSPACE_ROOT` points the
/// same binary at another copy of the checkout (the tests use it to run two
/// checkouts at once without building twice).
fn workspace_root() -> PathBuf {
    match std::env::var_os("XTASK_WORKSPACE_ROOT") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    }
}

/// This process's real user id (Linux), from /proc/self/status.
pub fn uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// This machine's name, which the harness's objects carry beside their
/// checkout's folder (`org.libertem.dist-test.host`): a folder is looked
/// for only on the machine it was on (an engine may serve several).
pub fn this_host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `ltdist-<folder>-<hash of the real path>`: names this checkout's
/// clusters, images and the value of its label.
pub fn checkout_id(root: &Path) -> String {
    let real = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let folder = real.file_name().unwrap_or_default().to_string_lossy();
    let hash = &sha256_bytes(real.to_string_lossy().as_bytes())[..8];
    project_name("ltdist", &folder, hash)
}

pub struct Workspace {
    pub root: PathBuf,
    /// `target/dist-test`: everything the xtask writes lives below it.
    pub target: PathBuf,
    pub config: Config,
    /// Names this checkout's clusters, images and labels.
    pub checkout_id: String,
}

impl Workspace {
    pub fn load(loc: &Location) -> Result<Workspace> {
        let root = &loc.root;
        let config = Config::load(&loc.config)?;
        let target = root.join("target").join("dist-test");
        fs::create_dir_all(&target).with_context(|| {
            format!("cannot create {}: make target/ writable", target.display())
        })?;
        // A directory that exists but refuses writes fails here, not half-way.
        let probe = target.join(".writable");
        fs::write(&probe, b"").with_context(|| {
            format!(
                "cannot write in {}: make target/ writable",
                target.display()
            )
        })?;
        let _ = fs::remove_file(probe);
        let checkout_id = checkout_id(root);
        debug_assert!(crate::docker::compose::is_valid_project_name(&checkout_id));
        Ok(Workspace {
            root: root.to_path_buf(),
            target,
            config,
            checkout_id,
        })
    }

    pub fn docker_dir(&self) -> PathBuf {
        self.root.join("packaging").join("docker")
    }

    pub fn compose_file(&self) -> PathBuf {
        self.docker_dir().join("docker-compose.yml")
    }

    /// The pinned release's committed requirements for `python`.
    pub fn requirements(&self, python: &str) -> PathBuf {
        self.docker_dir()
            .join(format!("requirements-py{python}.txt"))
    }

    /// The compose project (or stack) of the kept cluster of `up`/`test`/`down`.
    pub fn cluster_project(&self) -> String {
        self.checkout_id.clone()
    }

    /// Where `up` keeps the kept cluster's state, results and logs.
    pub fn cluster_dir(&self) -> PathBuf {
        self.target.join("cluster")
    }

    /// Every run's folder is `runs/<run id>` under here; the tests
    /// container of a compose cluster mounts it at `/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        self.target.join("runs")
    }

    /// pytest's cache (`--lf`, `--ff`, `--sw`) for the project in
    /// `project`, kept between runs of this checkout: one folder per project
    /// (`pytest-cache/<folder>-<hash of its path>`), never in the project.
    pub fn pytest_cache(&self, project: &Path) -> PathBuf {
        let folder = project.file_name().unwrap_or_default().to_string_lossy();
        let hash = &sha256_bytes(project.to_string_lossy().as_bytes())[..8];
        self.target
            .join("pytest-cache")
            .join(format!("{folder}-{hash}"))
    }

    /// The compose project of one `dist-test` run: never the same as a kept
    /// `up` cluster, nor as another run.
    pub fn run_project(&self, run_id: &str) -> String {
        run_project(&self.checkout_id, run_id)
    }
}

/// The longest name of a run's cluster: on a swarm each service is named
/// `<stack>_<service>`, which Docker caps at 63 characters; the longest
/// service name (`ipy-worker-NN`) takes 14 of them, and a `--fresh` pass's
/// `-<pass>` (up to `-999`) 4 more.
pub const MAX_RUN_PROJECT: usize = 45;

/// `<checkout id>-r<run id without punctuation>`, the checkout id's folder
/// part cut where the whole would pass [`MAX_RUN_PROJECT`] (its hash stays,
/// so two checkouts still differ).
pub fn run_project(checkout_id: &str, run_id: &str) -> String {
    let compact: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let suffix = format!("-r{}", compact.to_lowercase());
    let room = MAX_RUN_PROJECT.saturating_sub(suffix.len());
    if checkout_id.len() <= room {
        return format!("{checkout_id}{suffix}");
    }
    // `ltdist-<folder>-<hash>`: the folder is what gives way.
    let (head, hash) = checkout_id.rsplit_once('-').unwrap_or((checkout_id, ""));
    let keep = room.saturating_sub(hash.len() + 1).min(head.len());
    let head = head[..keep].trim_end_matches('-');
    format!("{head}-{hash}{suffix}")
}

/// A workspace at `/repo` with the committed config, for unit tests: it
/// writes nothing, and nothing exists at its paths.
#[cfg(test)]
pub(crate) fn for_tests() -> Workspace {
    let cfg = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist-test.toml"))
        .expect("the committed config");
    Workspace {
        root: "/repo".into(),
        target: "/repo/target/dist-test".into(),
        config: Config::parse(&cfg).expect("the committed config parses"),
        checkout_id: "ltdist-repo-0123abcd".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_project_has_its_own_pytest_cache() {
        let ws = for_tests();
        let a = ws.pytest_cache(Path::new("/src/LiberTEM"));
        assert!(
            a.starts_with("/repo/target/dist-test/pytest-cache"),
            "{a:?}"
        );
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("LiberTEM-"));
        assert_ne!(a, ws.pytest_cache(Path::new("/other/LiberTEM")));
        assert_eq!(a, ws.pytest_cache(Path::new("/src/LiberTEM")));
    }

    #[test]
    fn names_of_a_checkout() {
        let id = checkout_id(Path::new("/nonexistent/My Checkout"));
        assert!(id.starts_with("ltdist-my-checkout-"), "{id}");
        assert!(crate::docker::compose::is_valid_project_name(&id));
        assert_eq!(
            run_project("ltdist-x-ab", "20261125-143012-4242"),
            "ltdist-x-ab-r202611251430124242"
        );
        // A long folder: every swarm service name of the run stays within
        // Docker's 63 characters, and two such checkouts still differ.
        let a = checkout_id(Path::new("/work/libertem-dist-test"));
        let b = checkout_id(Path::new("/home/me/libertem-dist-test"));
        let (ra, rb) = (
            run_project(&a, "20261207-202014-12484"),
            run_project(&b, "20261207-202014-12484"),
        );
        assert!(ra.len() <= MAX_RUN_PROJECT, "{ra}");
        assert!(format!("{ra}-999_ipy-worker-12").len() <= 63, "{ra}");
        assert!(ra.starts_with("ltdist-libertem-"), "{ra}");
        assert_ne!(ra, rb);
        assert!(crate::docker::compose::is_valid_project_name(&ra), "{ra}");
    }
}
