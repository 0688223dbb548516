//! `dist-test.toml`: what is tested and how the cluster is built.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

pub const FILE_NAME: &str = "dist-test.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub project: ProjectCfg,
    pub image: ImageCfg,
    pub cluster: ClusterCfg,
    pub timeouts: Timeouts,
    /// A cluster the user runs, for `dist-test --attach` (optional).
    #[serde(default)]
    pub attach: AttachCfg,
}

/// `[attach]`: where the user's cluster is, each key overridden by the
/// flag of the same name (docs/attach.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachCfg {
    /// The Dask scheduler's address as the tests' container reaches it.
    pub scheduler: Option<String>,
    /// The controller's `ipcontroller-client.json`, a path on this machine.
    pub ipython_client: Option<std::path::PathBuf>,
    /// A Docker network for the tests' container to join (the default
    /// bridge without it).
    pub network: Option<String>,
    /// The scratch folder LiberTEM's dist tests share with the workers, at
    /// the same path on both (default: target/dist-test/attach/temp_data).
    pub scratch: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectCfg {
    pub name: String,
    pub version: String,
    pub sdist_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageCfg {
    /// The Python when neither `--python` nor the project names one.
    pub python: String,
    pub platform: String,
    /// The pullable base, with `{python}` for the Python's version.
    pub base: String,
    pub fallback_mirror: String,
    /// The debootstrap package fetched from `fallback_mirror` when none is
    /// installed, and its sha256 (`apt-cache show debootstrap` prints both).
    pub debootstrap_version: String,
    pub debootstrap_sha256: String,
    /// Python version -> the Debian suite whose `python3` it is.
    pub suites: BTreeMap<String, String>,
    /// The harness's BuildKit cache (every checkout's) is kept under this
    /// many MB, its oldest records removed after each build.
    #[serde(default = "default_build_cache_mb")]
    pub build_cache_mb: u64,
}

fn default_build_cache_mb() -> u64 {
    512
}

impl ImageCfg {
    /// The pullable base image of `python`.
    pub fn base_for(&self, python: &str) -> String {
        self.base.replace("{python}", python)
    }

    /// The Debian suite that ships `python`, if any.
    pub fn suite_for(&self, python: &str) -> Option<&str> {
        self.suites.get(python).map(String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterCfg {
    pub workers: u32,
    pub engines: u32,
    pub worker_cpus: u32,
    /// Optional: which clusters start warm (see [`WarmStart`]).
    #[serde(default)]
    pub warm_start: WarmStart,
}

/// Which clusters' workers, engines and pytest are forked from parents
/// that imported everything but the project first (warm_start.py). It
/// makes the main job's cluster ready and through its tests sooner (the
/// worker processes of a host share one import), and costs CPU where a
/// cluster runs one small test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmStart {
    /// Every cluster.
    #[default]
    Always,
    /// Only the checkout's kept cluster (`up`), whose processes an edit
    /// replaces.
    Kept,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub ready_s: u64,
    pub tests_s: u64,
    /// Each test's deadline (its setup, call and teardown), which
    /// `--test-timeout` overrides.
    #[serde(default = "default_test_s")]
    pub test_s: u64,
}

/// LiberTEM's slowest dist test takes about 12 s on a 2-core machine: 25
/// times that.
fn default_test_s() -> u64 {
    300
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        // toml's message names the key and the line; keep only its first line.
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', "; ");
            match e.span() {
                Some(span) => {
                    let line = text[..span.start].matches('\n').count() + 1;
                    anyhow::anyhow!("line {line}: {msg}")
                }
                None => anyhow::anyhow!("{msg}"),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        for (key, sha) in [
            ("project.sdist_sha256", &self.project.sdist_sha256),
            ("image.debootstrap_sha256", &self.image.debootstrap_sha256),
        ] {
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{key} must be 64 hex digits, got {sha:?}");
            }
        }
        let v = &self.image.debootstrap_version;
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.~-:".contains(&b))
        {
            bail!("image.debootstrap_version {v:?} is not a Debian package version");
        }
        if !is_package_name(&self.project.name) {
            bail!(
                "project.name {:?} is not a Python package name",
                self.project.name
            );
        }
        if self.project.version.is_empty() || self.project.version.contains(char::is_whitespace) {
            bail!(
                "project.version {:?} is not a version",
                self.project.version
            );
        }
        python_minor(&self.image.python)?;
        for (python, suite) in &self.image.suites {
            python_minor(python).context("a key of [image.suites]")?;
            if suite.is_empty()
                || !suite
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                bail!("image.suites.\"{python}\" = {suite:?} is not a Debian suite name");
            }
        }
        if !self.image.base.contains("{python}") {
            bail!(
                "image.base {:?} must contain {{python}}, like \"python:{{python}}-slim\"",
                self.image.base
            );
        }
        if !self.image.platform.contains("linux") {
            bail!("image.platform must be a Linux target for uv, like \"x86_64-manylinux_2_36\", got {:?}", self.image.platform);
        }
        if self.image.base.is_empty() || self.image.base.contains(char::is_whitespace) {
            bail!("image.base {:?} is not an image reference", self.image.base);
        }
        for (key, n) in [
            ("cluster.workers", self.cluster.workers),
            ("cluster.engines", self.cluster.engines),
            ("cluster.worker_cpus", self.cluster.worker_cpus),
        ] {
            if !(1..=32).contains(&n) {
                bail!("{key} must be between 1 and 32, got {n}");
            }
        }
        for (key, n) in [
            ("timeouts.ready_s", self.timeouts.ready_s),
            ("timeouts.tests_s", self.timeouts.tests_s),
            ("timeouts.test_s", self.timeouts.test_s),
        ] {
            if n == 0 {
                bail!("{key} must be positive");
            }
        }
        Ok(())
    }
}

/// `"3.11"` -> `(3, 11)`; anything else is an error that names the key.
pub fn python_minor(v: &str) -> Result<(u32, u32)> {
    let parsed = v
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    match parsed {
        Some((3, minor)) => Ok((3, minor)),
        _ => bail!("a Python version must look like \"3.14\", got {v:?}"),
    }
}

fn is_package_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(FILE_NAME);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn committed_config_parses() {
        let cfg = Config::parse(&repo_config()).unwrap();
        assert_eq!(cfg.project.name, "libertem");
        assert_eq!(cfg.cluster.workers, 2);
        assert_eq!(python_minor(&cfg.image.python).unwrap(), (3, 14));
        assert_eq!(cfg.image.suite_for("3.14"), Some("forky"));
        assert_eq!(cfg.image.base_for("3.13"), "python:3.13-slim");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = repo_config().replace("[cluster]\n", "[cluster]\nwrokers = 3\n");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("wrokers"), "{err}");
        assert!(err.contains("line "), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let text = repo_config().replace("workers = 2", "workers = 0");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("cluster.workers"), "{err}");

        let text = repo_config().replace("python = \"3.14\"", "python = \"eleven\"");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("Python version"), "{err}");

        let text = repo_config().replace("\"3.13\" = \"trixie\"", "\"3.13\" = \"Trixie!\"");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("image.suites"), "{err}");

        let text = repo_config().replace("sdist_sha256 = \"ca42", "sdist_sha256 = \"zz42");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("project.sdist_sha256"), "{err}");
    }

    #[test]
    fn warm_start_is_always_unless_set_to_kept() {
        let cfg = Config::parse(&repo_config()).unwrap();
        assert_eq!(cfg.cluster.warm_start, WarmStart::Always);
        let kept = repo_config().replace("# warm_start = \"always\"", "warm_start = \"kept\"");
        assert_eq!(
            Config::parse(&kept).unwrap().cluster.warm_start,
            WarmStart::Kept
        );
        let bad = repo_config().replace("# warm_start = \"always\"", "warm_start = \"sometimes\"");
        let err = format!("{:#}", Config::parse(&bad).unwrap_err());
        assert!(err.contains("sometimes") && err.contains("kept"), "{err}");
    }

    #[test]
    fn wrong_type_and_missing_key_are_named() {
        let text = repo_config().replace("ready_s = 180", "ready_s = \"soon\"");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("ready_s") || err.contains("line"), "{err}");

        let text = repo_config().replace("engines = 2\n", "");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("engines"), "{err}");
    }
}
