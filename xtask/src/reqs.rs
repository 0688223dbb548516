//! Pinned, hashed requirements for the image's Python, and telling when they
//! are stale.
//!
//! The file starts with a header that records what it was made from: one
//! `# input:` line per input (a digest, or the target Python and platform),
//! and a digest of the body, so that `--check` can name the input that
//! changed, or see a hand edit, without the network.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::digest::{sha256_bytes, sha256_file};
use crate::exec;
use crate::project::{Project, Source};
use crate::ui::Ui;
use crate::workspace::Workspace;

mod header;

use header::parse;
pub use header::{body, check_text, header, Input};

const HARNESS_FILE: &str = "harness-requirements.in";

/// Where the requirements of `project` on its Python live: the committed
/// file for the pinned release, a file under target/ for another release or
/// a checkout.
pub fn requirements_path(ws: &Workspace, project: &Project) -> PathBuf {
    let python = &project.python.version;
    let file = format!("requirements-py{python}.txt");
    match &project.source {
        Source::Pinned => ws.requirements(python),
        Source::Release { release, .. } => ws
            .target
            .join("reqs")
            .join(format!("{}-{}", release.name, release.version))
            .join(file),
        Source::Checkout => {
            let key = &sha256_bytes(project.dir.to_string_lossy().as_bytes())[..12];
            ws.target.join("reqs").join(key).join(file)
        }
    }
}

/// What the file is made from. For a release the sdist's sha256 stands for
/// its pyproject.toml and test requirements, so `--check` of the pinned
/// one needs neither the sdist nor the network.
pub fn inputs(ws: &Workspace, project: &Project) -> Result<Vec<Input>> {
    let cfg = &ws.config;
    let mut out = Vec::new();
    match &project.source {
        Source::Pinned => out.push(Input {
            name: format!(
                "{}=={} (sdist, dist-test.toml [project])",
                cfg.project.name, cfg.project.version
            ),
            value: format!("sha256:{}", cfg.project.sdist_sha256),
        }),
        Source::Release {
            release,
            resolve_date,
        } => {
            out.push(Input {
                name: format!("{}=={} (sdist from PyPI)", release.name, release.version),
                value: format!("sha256:{}", release.sha256),
            });
            out.push(Input {
                name: "resolved as of (uv --exclude-newer)".into(),
                value: resolve_date.clone(),
            });
        }
        Source::Checkout => {
            for f in ["pyproject.toml", "setup.py", "test_requirements.txt"] {
                let p = project.dir.join(f);
                if p.is_file() {
                    out.push(Input {
                        name: f.to_string(),
                        value: format!("sha256:{}", sha256_file(&p)?),
                    });
                }
            }
        }
    }
    let harness = ws.docker_dir().join(HARNESS_FILE);
    out.push(Input {
        name: format!("packaging/docker/{HARNESS_FILE}"),
        value: format!("sha256:{}", sha256_file(&harness)?),
    });
    out.push(Input {
        name: "target (--python, dist-test.toml [image])".into(),
        value: format!("python-{}-{}", project.python.version, cfg.image.platform),
    });
    Ok(out)
}

/// Check the requirements of `project`; the error says what to run.
pub fn check(ws: &Workspace, project: &Project) -> Result<()> {
    let path = requirements_path(ws, project);
    let text = fs::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!(
            "{} does not exist: run `{}`",
            path.display(),
            update_command(project)
        )
    })?;
    let inputs = inputs(ws, project)?;
    check_text(&text, &inputs).map_err(|why| {
        anyhow::anyhow!(
            "{} is stale: {why}; run `{}`{}",
            rel(ws, &path),
            update_command(project),
            if project.is_pinned() {
                " and commit the result"
            } else {
                ""
            }
        )
    })
}

fn update_command(project: &Project) -> String {
    let python = &project.python.version;
    match &project.source {
        Source::Pinned => format!("cargo xtask update-reqs --python {python}"),
        Source::Release { release, .. } => format!(
            "cargo xtask update-reqs --libertem {} --python {python}",
            release.version
        ),
        Source::Checkout => format!(
            "cargo xtask update-reqs --project {} --python {python}",
            project.dir.display()
        ),
    }
}

fn rel(ws: &Workspace, p: &Path) -> String {
    p.strip_prefix(&ws.root).unwrap_or(p).display().to_string()
}

#[derive(Debug, Clone, Default)]
pub enum Upgrade {
    #[default]
    None,
    All,
    Packages(Vec<String>),
}

/// Resolve and write the requirements of `project`. The file is replaced
/// atomically: a failure leaves the previous one byte-for-byte as it was.
pub fn update(
    sh: &Shell,
    ws: &Workspace,
    ui: Ui,
    project: &Project,
    upgrade: &Upgrade,
) -> Result<PathBuf> {
    let out_path = requirements_path(ws, project);
    let uv = crate::downloads::uv(sh, ws, ui)?;
    let uv_version =
        exec::read(cmd!(sh, "{uv} --version"), exec::QUERY, ui).context("running uv --version")?;
    let uv_version = uv_version
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_string();

    let work = ws
        .target
        .join("reqs-work")
        .join(std::process::id().to_string());
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = (|| {
        let sources = lay_out_inputs(ws, project, &work, &out_path)?;
        let upgrade_args: Vec<String> = match upgrade {
            Upgrade::None => vec![],
            Upgrade::All => vec!["--upgrade".into()],
            Upgrade::Packages(p) => p
                .iter()
                .flat_map(|n| ["--upgrade-package".into(), n.clone()])
                .collect(),
        };
        let python = &project.python.version;
        let platform = &ws.config.image.platform;
        let as_of: Vec<String> = match &project.source {
            Source::Release { resolve_date, .. } => {
                vec!["--exclude-newer".into(), resolve_date.clone()]
            }
            _ => vec![],
        };
        let _dir = sh.push_dir(&work);
        let compile = cmd!(
            sh,
            "{uv} pip compile {sources...} --python-version {python} --python-platform {platform}
             --generate-hashes --no-header --quiet {as_of...} {upgrade_args...}
             --output-file requirements.txt"
        );
        let out = exec::output(compile, crate::downloads::DOWNLOAD, ui)
            .context("running uv pip compile")?;
        if !out.status.success() {
            bail!(
                "resolving the requirements failed; {} is unchanged. uv said:\n{}",
                rel(ws, &out_path),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let body = fs::read_to_string(work.join("requirements.txt"))?;
        let body = body.trim_start_matches('\n').to_string();
        let inputs = inputs(ws, project)?;
        Ok(header(&inputs, &body, &uv_version) + &body)
    })();
    let _ = fs::remove_dir_all(&work);
    let text = result?;
    crate::fsx::write_atomic(&out_path, text.as_bytes())?;
    Ok(out_path)
}

/// Copy what uv resolves from into `work` (the project's pyproject.toml and
/// test requirements, its build requirements, the harness's, and the
/// current pins as the starting point); the input files' names.
fn lay_out_inputs(
    ws: &Workspace,
    project: &Project,
    work: &Path,
    out_path: &Path,
) -> Result<Vec<String>> {
    let pyproject = project.pyproject();
    let text = fs::read_to_string(&pyproject)
        .with_context(|| format!("reading {}", pyproject.display()))?;
    let build_requires = build_requires(&text)
        .with_context(|| format!("{} is not valid TOML", pyproject.display()))?;
    let mut sources = vec![];
    if has_project_table(&text) {
        fs::write(work.join("pyproject.toml"), &text)?;
        sources.push("pyproject.toml".to_string());
    } else {
        // Dependencies declared in setup.py (LiberTEM 0.14 and before):
        // the sdist's PKG-INFO lists them, else uv asks setup.py itself.
        match fs::read_to_string(project.dir.join("PKG-INFO")) {
            Ok(info) => {
                fs::write(work.join("project-requires.in"), requires_dist(&info))?;
                sources.push("project-requires.in".into());
            }
            Err(_) => sources.push(project.dir.join("setup.py").display().to_string()),
        }
    }
    let tests = project.dir.join("test_requirements.txt");
    if tests.is_file() {
        fs::copy(&tests, work.join("test_requirements.txt"))?;
        sources.push("test_requirements.txt".into());
    }
    fs::write(
        work.join("build-system.in"),
        build_requires.join("\n") + "\n",
    )?;
    sources.push("build-system.in".into());
    fs::copy(ws.docker_dir().join(HARNESS_FILE), work.join(HARNESS_FILE))?;
    sources.push(HARNESS_FILE.into());
    // Existing pins are the starting point, unless upgrading. A checkout
    // resolved for the first time starts from the pinned release's pins for
    // its Python: uv keeps those its requirements allow and changes only
    // what they force, so a checkout close to the release runs on the same
    // runtime as the release (one per Python, not one per checkout);
    // `update-reqs --project DIR --upgrade` resolves it anew.
    let seed = match &project.source {
        Source::Checkout => Some(ws.requirements(&project.python.version)),
        _ => None,
    };
    let start = fs::read_to_string(out_path)
        .ok()
        .or_else(|| seed.and_then(|s| fs::read_to_string(s).ok()));
    if let Some(old) = start {
        let body = parse(&old).map(|(_, _, b)| b.to_string()).unwrap_or(old);
        fs::write(work.join("requirements.txt"), body)?;
    }
    Ok(sources)
}

fn has_project_table(pyproject: &str) -> bool {
    toml::from_str::<toml::Table>(pyproject).is_ok_and(|d| d.contains_key("project"))
}

/// The `Requires-Dist` lines of a PKG-INFO, without those of extras, as a
/// requirements file.
pub fn requires_dist(pkg_info: &str) -> String {
    pkg_info
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("Requires-Dist:"))
        .map(str::trim)
        .filter(|r| !r.contains("extra =="))
        .map(|r| format!("{r}\n"))
        .collect()
}

/// `[build-system].requires`: needed in the image to install the project
/// offline, without build isolation.
pub fn build_requires(pyproject: &str) -> Result<Vec<String>> {
    let doc: toml::Table = toml::from_str(pyproject)?;
    let reqs = doc
        .get("build-system")
        .and_then(|b| b.get("requires"))
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_else(|| vec!["setuptools".to_string(), "wheel".to_string()]);
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_from_pkg_info() {
        let info = "Metadata-Version: 2.1\nName: libertem\nRequires-Dist: numpy\n\
            Requires-Dist: pywin32!=226; platform_system == \"Windows\"\n\
            Requires-Dist: torch<1.12; extra == \"torch\"\n\nRequires-Dist: not-metadata\n";
        assert_eq!(
            requires_dist(info),
            "numpy\npywin32!=226; platform_system == \"Windows\"\n"
        );
        assert!(has_project_table("[project]\nname = \"x\"\n"));
        assert!(!has_project_table("# a stub\n"));
    }

    #[test]
    fn build_requires_from_pyproject() {
        let t = "[build-system]\nrequires = [\"hatchling\", \"hatch-fancy-pypi-readme\"]\n";
        assert_eq!(
            build_requires(t).unwrap(),
            ["hatchling", "hatch-fancy-pypi-readme"]
        );
        assert_eq!(
            build_requires("[project]\nname='x'\n").unwrap(),
            ["setuptools", "wheel"]
        );
        assert!(build_requires("[[[").is_err());
    }
}
