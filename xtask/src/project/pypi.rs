//! What PyPI publishes about a release: its sdist's address, sha256 and
//! upload time (PyPI's JSON API), read with wget; and the version list that
//! an unknown version's error names.

use std::cmp::Ordering;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::ui::Ui;

const INDEX: &str = "https://pypi.org/pypi";

/// A release's sdist, as PyPI publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdistFile {
    pub filename: String,
    pub url: String,
    pub sha256: String,
    /// RFC 3339, UTC (`2025-07-14T10:12:09.541869Z`).
    pub uploaded: String,
}

#[derive(Deserialize)]
struct ProjectJson {
    releases: std::collections::BTreeMap<String, Vec<FileJson>>,
}

#[derive(Deserialize)]
struct FileJson {
    filename: String,
    url: String,
    packagetype: String,
    digests: Digests,
    upload_time_iso_8601: String,
}

#[derive(Deserialize)]
struct Digests {
    sha256: String,
}

/// The sdist of `name` `version` on PyPI; an unknown version is one line
/// that names the versions there are.
pub fn sdist(sh: &Shell, ui: Ui, work: &Path, name: &str, version: &str) -> Result<SdistFile> {
    let url = format!("{INDEX}/{name}/json");
    let file = work.join(format!(".{name}-{}.json", std::process::id()));
    let fetched = crate::downloads::fetch_url(sh, ui, &url, &file);
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    fetched.with_context(|| format!("asking PyPI about {name}"))?;
    let text = text.with_context(|| format!("reading PyPI's answer for {name}"))?;
    sdist_in(&text, &url, name, version)
}

/// The sdist of `version` in PyPI's JSON for the project (`base` is the
/// address the JSON came from: file addresses in it may be relative).
pub fn sdist_in(json: &str, base: &str, name: &str, version: &str) -> Result<SdistFile> {
    let project: ProjectJson =
        serde_json::from_str(json).with_context(|| format!("PyPI's JSON for {name}"))?;
    let Some(files) = project.releases.get(version) else {
        let mut versions: Vec<&String> = project
            .releases
            .iter()
            .filter(|(_, f)| f.iter().any(|f| f.packagetype == "sdist"))
            .map(|(v, _)| v)
            .collect();
        versions.sort_by(|a, b| version_order(a, b));
        let list: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
        bail!(
            "{name} {version} is not on PyPI; releases with an sdist: {}",
            list.join(", ")
        );
    };
    let f = files
        .iter()
        .find(|f| f.packagetype == "sdist")
        .with_context(|| format!("{name} {version} has no sdist on PyPI, so no test suite"))?;
    Ok(SdistFile {
        filename: f.filename.clone(),
        url: join_url(base, &f.url),
        sha256: f.digests.sha256.to_lowercase(),
        uploaded: f.upload_time_iso_8601.clone(),
    })
}

/// `rel` resolved against `base` (RFC 3986, for the forms PyPI uses:
/// absolute, `/path` and `../path`).
pub fn join_url(base: &str, rel: &str) -> String {
    if rel.contains("://") {
        return rel.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(net) = rel.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(abs) = rel.strip_prefix('/') {
        return format!("{scheme}://{host}/{abs}");
    }
    let mut dirs: Vec<&str> = path.split('/').collect();
    dirs.pop(); // the last segment is a file, not a folder
    for part in rel.split('/') {
        match part {
            ".." => {
                dirs.pop();
            }
            "." => {}
            p => dirs.push(p),
        }
    }
    format!("{scheme}://{host}/{}", dirs.join("/"))
}

/// Release versions in numeric order (`0.9.2` before `0.10.0`; a
/// pre-release before its release).
pub fn version_order(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> Vec<(u64, String)> {
        v.split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                let rest = p[digits.len()..].to_string();
                // "" sorts after "rc1": a release after its candidates.
                let rest = if rest.is_empty() { "~".into() } else { rest };
                (digits.parse().unwrap_or(0), rest)
            })
            .collect()
    }
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"info": {}, "releases": {
        "0.9.2": [{"filename": "libertem-0.9.2.tar.gz", "url": "../../packages/a/b/libertem-0.9.2.tar.gz",
                   "packagetype": "sdist", "digests": {"sha256": "AB12"}, "upload_time_iso_8601": "2022-01-01T00:00:00Z"}],
        "0.10.0": [{"filename": "libertem-0.10.0.tar.gz", "url": "https://files.example/libertem-0.10.0.tar.gz",
                   "packagetype": "sdist", "digests": {"sha256": "cd34"}, "upload_time_iso_8601": "2023-01-01T00:00:00Z"}],
        "0.11.0rc1": [{"filename": "x.whl", "url": "/x.whl", "packagetype": "bdist_wheel",
                   "digests": {"sha256": "ef"}, "upload_time_iso_8601": "2023-02-01T00:00:00Z"}]
    }}"#;

    #[test]
    fn a_release_and_its_sdist() {
        let base = "https://pypi.org/pypi/libertem/json";
        let f = sdist_in(JSON, base, "libertem", "0.9.2").unwrap();
        assert_eq!(f.url, "https://pypi.org/packages/a/b/libertem-0.9.2.tar.gz");
        assert_eq!(f.sha256, "ab12");
        assert_eq!(f.uploaded, "2022-01-01T00:00:00Z");
        let f = sdist_in(JSON, base, "libertem", "0.10.0").unwrap();
        assert_eq!(f.url, "https://files.example/libertem-0.10.0.tar.gz");
    }

    #[test]
    fn an_unknown_version_names_the_releases() {
        let err = sdist_in(
            JSON,
            "https://pypi.org/pypi/libertem/json",
            "libertem",
            "9.9",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("libertem 9.9 is not on PyPI"), "{err}");
        // Numeric order, and only releases with an sdist.
        assert!(err.ends_with("0.9.2, 0.10.0"), "{err}");
        let err = sdist_in(JSON, "https://x/y", "libertem", "0.11.0rc1").unwrap_err();
        assert!(err.to_string().contains("no sdist"), "{err}");
    }

    #[test]
    fn urls_and_versions() {
        assert_eq!(join_url("https://h/a/b/c", "/d"), "https://h/d");
        assert_eq!(join_url("https://h/a/b/c", "d/e"), "https://h/a/b/d/e");
        assert_eq!(
            join_url("https://h/a/b/c", "//f.example/x"),
            "https://f.example/x"
        );
        assert_eq!(version_order("0.16.0rc1", "0.16.0"), Ordering::Less);
        assert_eq!(version_order("0.9.2", "0.10.0"), Ordering::Less);
    }
}
