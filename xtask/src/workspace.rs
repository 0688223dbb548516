//! Paths and names that belong to this checkout.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::compose::project_name;
use crate::config::Config;
use crate::project::sha256_bytes;

/// Where the checkout is, and which config file to read.
#[derive(Debug, Clone)]
pub struct Location {
    pub root: PathBuf,
    pub config: PathBuf,
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
        let real = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let folder = real.file_name().unwrap_or_default().to_string_lossy();
        let hash = &sha256_bytes(real.to_string_lossy().as_bytes())[..8];
        let checkout_id = project_name("ltdist", &folder, hash);
        debug_assert!(crate::compose::is_valid_project_name(&checkout_id));
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

    pub fn requirements(&self) -> PathBuf {
        self.docker_dir().join("requirements.txt")
    }

    /// The image every service runs.
    pub fn image_tag(&self) -> String {
        format!("{}:latest", self.checkout_id)
    }

    /// The compose project of the long-lived cluster of `up`/`test`/`down`.
    pub fn cluster_project(&self) -> String {
        self.checkout_id.clone()
    }

    /// The compose project of one `dist-test` run: never the same as a kept
    /// `up` cluster, nor as another run.
    pub fn run_project(&self, run_id: &str) -> String {
        let compact: String = run_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("{}-r{}", self.checkout_id, compact.to_lowercase())
    }
}
