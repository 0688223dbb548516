//! Volumes and networks, and removal by label of whatever a teardown
//! missed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Docker;

impl Docker<'_> {
    /// The volume's labels, when it exists.
    pub fn volume_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let out = self
            .read(&["volume", "inspect", "--format", "{{json .Labels}}", name])
            .ok()?;
        let labels: Option<BTreeMap<String, String>> = serde_json::from_str(out.trim()).ok()?;
        Some(labels.unwrap_or_default())
    }

    pub fn volume_exists(&self, name: &str) -> bool {
        self.volume_labels(name).is_some()
    }

    /// Where the engine keeps its state (images, containers, volumes), as
    /// a path of its host.
    pub fn root_dir(&self) -> Result<PathBuf> {
        let out = self
            .read(&["info", "--format", "{{.DockerRootDir}}"])
            .context("asking the engine where it keeps its state")?;
        Ok(PathBuf::from(out.trim()))
    }

    pub fn volume_create(&self, name: &str, labels: &[String]) -> Result<()> {
        let mut args = vec!["volume", "create"];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.push(name);
        self.run(&args)
            .with_context(|| format!("creating the volume {name}"))
    }

    /// `docker volume rm`: `true` when it is gone (`false`: in use by a
    /// container, or not there).
    pub fn volume_rm(&self, name: &str) -> bool {
        self.succeeds(&["volume", "rm", name])
    }

    /// Names of the volumes matching `filters`.
    pub fn volumes(&self, filters: &[String]) -> Result<Vec<String>> {
        self.ids(&["volume", "ls", "--quiet"], filters)
    }

    fn ids(&self, list: &[&str], filters: &[String]) -> Result<Vec<String>> {
        let mut args = list.to_vec();
        for f in filters {
            args.extend(["--filter", f]);
        }
        Ok(self
            .read(&args)?
            .split_whitespace()
            .map(String::from)
            .collect())
    }

    /// Remove containers, then networks, then volumes matching `filter`;
    /// how many objects were left after the attempt.
    pub fn sweep(&self, filter: &str) -> Result<usize> {
        // (list, remove), in the order they can go: containers hold
        // networks and volumes.
        const KINDS: [(&[&str], &[&str]); 3] = [
            (&["ps", "--all", "--quiet"], &["rm", "--force", "--volumes"]),
            (&["network", "ls", "--quiet"], &["network", "rm"]),
            (&["volume", "ls", "--quiet"], &["volume", "rm", "--force"]),
        ];
        let filters = [filter.to_string()];
        let mut removed = Vec::new();
        for (list, remove) in KINDS {
            let found = self.ids(list, &filters)?;
            if !found.is_empty() {
                let mut args = remove.to_vec();
                args.extend(found.iter().map(String::as_str));
                let _ = self.succeeds(&args);
                removed.push(list);
            }
        }
        // A kind that had nothing matching has nothing left (the usual
        // case, after compose's own teardown): only the others are listed
        // again.
        let mut left = 0;
        for list in removed {
            left += self.ids(list, &filters)?.len();
        }
        Ok(left)
    }

    /// The values of label `key` on containers, networks and volumes
    /// matching `filter`, each once.
    pub fn label_values(&self, filter: &str, key: &str) -> Result<Vec<String>> {
        let format = format!("{{{{.Label \"{key}\"}}}}");
        let mut values: Vec<String> = Vec::new();
        for list in [&["ps", "--all"][..], &["network", "ls"], &["volume", "ls"]] {
            let mut args = list.to_vec();
            args.extend(["--filter", filter, "--format", &format]);
            for v in self.read(&args)?.lines().map(str::trim) {
                if !v.is_empty() && !values.iter().any(|x| x == v) {
                    values.push(v.to_string());
                }
            }
        }
        Ok(values)
    }
}
