//! Every compose invocation is built here, so nothing else needs to know
//! whether it is the `docker compose` plugin or the standalone `docker-compose`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xshell::{cmd, Cmd, Shell};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Flavour {
    /// `docker compose` (v2, a docker CLI plugin).
    Plugin { docker: PathBuf, version: String },
    /// `docker-compose`, either the Python 1.x or a standalone v2 binary.
    Standalone { bin: PathBuf, version: String },
}

impl Flavour {
    pub fn describe(&self) -> String {
        match self {
            Flavour::Plugin { version, .. } => format!("docker compose {version} (plugin)"),
            Flavour::Standalone { version, .. } => format!("docker-compose {version} (standalone)"),
        }
    }
}

/// One compose project: the file, the project name and the variables the file reads.
#[derive(Debug, Clone)]
pub struct Compose {
    pub flavour: Flavour,
    pub files: Vec<PathBuf>,
    pub project: String,
    pub env: Vec<(String, String)>,
}

impl Compose {
    /// `compose -f FILE -p PROJECT ARGS...`, with the file's variables set.
    pub fn cmd<'a>(&self, sh: &'a Shell, args: &[&str]) -> Cmd<'a> {
        let (prog, sub): (&Path, &[&str]) = match &self.flavour {
            Flavour::Plugin { docker, .. } => (docker, &["compose"]),
            Flavour::Standalone { bin, .. } => (bin, &[]),
        };
        let files: Vec<String> = self
            .files
            .iter()
            .flat_map(|f| ["--file".to_string(), f.display().to_string()])
            .collect();
        let project = &self.project;
        let mut c = cmd!(
            sh,
            "{prog} {sub...} {files...} --project-name {project} {args...}"
        );
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }
}

/// A compose project name valid for both flavours: v2 wants
/// `[a-z0-9][a-z0-9_-]*`, v1 silently drops anything else. The slug keeps it
/// readable; the hash keeps two checkouts with the same folder name apart.
pub fn project_name(prefix: &str, folder: &str, unique: &str) -> String {
    let mut slug = String::new();
    for c in folder.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(20).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("{prefix}-{unique}")
    } else {
        format!("{prefix}-{slug}-{unique}")
    }
}

pub fn is_valid_project_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(flavour: Flavour) -> Compose {
        Compose {
            flavour,
            files: vec![PathBuf::from("/repo/packaging/docker/docker-compose.yml")],
            project: "ltdist-main-0123abcd".into(),
            env: vec![("LT_IMAGE".into(), "img:tag".into())],
        }
    }

    #[test]
    fn plugin_command() {
        let sh = Shell::new().unwrap();
        let c = compose(Flavour::Plugin {
            docker: "/usr/bin/docker".into(),
            version: "2.24.0".into(),
        });
        assert_eq!(
            c.cmd(&sh, &["up", "-d"]).to_string(),
            "/usr/bin/docker compose --file /repo/packaging/docker/docker-compose.yml \
             --project-name ltdist-main-0123abcd up -d"
        );
    }

    #[test]
    fn standalone_command() {
        let sh = Shell::new().unwrap();
        let mut c = compose(Flavour::Standalone {
            bin: "/usr/bin/docker-compose".into(),
            version: "1.29.2".into(),
        });
        c.files.push("/repo/target/dist-test/size.yml".into());
        assert_eq!(
            c.cmd(&sh, &["down", "-v"]).to_string(),
            "/usr/bin/docker-compose --file /repo/packaging/docker/docker-compose.yml \
             --file /repo/target/dist-test/size.yml --project-name ltdist-main-0123abcd down -v"
        );
    }

    #[test]
    fn project_names_are_valid_for_both_flavours() {
        for folder in [
            "main",
            "My LiberTEM.Checkout",
            "___",
            "ÄÖÜ-x",
            "a_b",
            "-lead",
            "x".repeat(80).as_str(),
        ] {
            let name = project_name("ltdist", folder, "0123abcd");
            assert!(is_valid_project_name(&name), "{folder:?} -> {name:?}");
            assert!(name.len() <= 40, "{name}");
            assert!(name.ends_with("-0123abcd"));
        }
        assert_eq!(
            project_name("ltdist", "My LiberTEM.Checkout", "ab"),
            "ltdist-my-libertem-checkout-ab"
        );
        assert_eq!(project_name("ltdist", "___", "ab"), "ltdist-ab");
    }

    #[test]
    fn invalid_names_are_caught() {
        assert!(!is_valid_project_name("Upper"));
        assert!(!is_valid_project_name("-x"));
        assert!(!is_valid_project_name("a.b"));
        assert!(!is_valid_project_name(""));
    }
}
