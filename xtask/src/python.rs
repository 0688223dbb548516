//! Which Python a run uses, and why: `--python X.Y`; else the Python of the
//! project's own image (`packaging/docker/Dockerfile`); else the newest that
//! both the project (its classifiers, bounded by `requires-python`) and this
//! machine's routes to a base image support; else `dist-test.toml`'s
//! `image.python`. Pure text in, a choice out: the callers say which
//! Pythons the machine can reach.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::python_minor;
use crate::workspace::Workspace;

/// The Python of a run, and the reason it is that one (the run's header
/// says it).
#[derive(Debug, Clone, PartialEq)]
pub struct Python {
    pub version: String,
    pub why: String,
}

impl Python {
    /// `Python 3.14 (the reason)`.
    pub fn describe(&self) -> String {
        format!("Python {} ({})", self.version, self.why)
    }
}

/// The Pythons this machine has a route to a base for, oldest first: those
/// of a Debian suite in `[image.suites]` (built with debootstrap), and those
/// whose pullable base (`image.base`) is among the engine's images
/// (`present`, their `repo:tag`s). An engine that can pull has more:
/// `--python` uses them.
pub fn routes(ws: &Workspace, present: &[String]) -> Vec<String> {
    let cfg = &ws.config.image;
    let mut out: Vec<String> = cfg.suites.keys().cloned().collect();
    for minor in 8..=15 {
        let v = format!("3.{minor}");
        if !out.contains(&v) && present.contains(&cfg.base_for(&v)) {
            out.push(v);
        }
    }
    out.sort_by_key(|v| python_minor(v).unwrap_or_default());
    out
}

/// What the choice is made from.
pub struct Choice<'a> {
    /// `--python`, if given.
    pub explicit: Option<&'a str>,
    /// The project's folder, and how to name it in the reason.
    pub project: &'a Path,
    pub name: &'a str,
    /// The Pythons this machine has a route to a base for, newest last.
    pub routes: &'a [String],
    /// `dist-test.toml`'s `image.python`.
    pub configured: &'a str,
}

pub fn choose(c: &Choice) -> Result<Python> {
    let supported = supported(c.project);
    if let Some(v) = c.explicit {
        let (major, minor) = python_minor(v).context("--python")?;
        let listed = supported.is_empty() || supported.contains(&(major, minor));
        return Ok(Python {
            version: format!("{major}.{minor}"),
            why: if listed {
                "--python".into()
            } else {
                format!("--python; {} does not list it among its Pythons", c.name)
            },
        });
    }
    let dockerfile = c.project.join("packaging/docker/Dockerfile");
    if let Some(v) = fs::read_to_string(&dockerfile)
        .ok()
        .and_then(|t| dockerfile_python(&t))
    {
        return Ok(Python {
            version: v,
            why: format!(
                "{}'s own image, packaging/docker/Dockerfile, uses it",
                c.name
            ),
        });
    }
    let newest = c
        .routes
        .iter()
        .filter(|r| python_minor(r).is_ok_and(|m| supported.contains(&m)))
        .max_by_key(|r| python_minor(r).unwrap_or_default());
    if let Some(v) = newest {
        return Ok(Python {
            version: v.clone(),
            why: format!(
                "the newest that {} and this machine both support; this machine: {}",
                c.name,
                c.routes.join(", ")
            ),
        });
    }
    // The project's own newest: a base for it may still be pullable.
    if let Some((major, minor)) = supported.iter().max() {
        return Ok(Python {
            version: format!("{major}.{minor}"),
            why: format!(
                "the newest {} supports; it supports none of the Pythons this machine has ({})",
                c.name,
                c.routes.join(", ")
            ),
        });
    }
    Ok(Python {
        version: c.configured.to_string(),
        why: format!(
            "dist-test.toml's image.python: {} lists no Python versions",
            c.name
        ),
    })
}

/// `X.Y` of the first `FROM python:X.Y…` line.
pub fn dockerfile_python(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("FROM") {
            return None;
        }
        let image = words.find(|w| !w.starts_with("--"))?;
        let image = image.strip_prefix("docker.io/").unwrap_or(image);
        let image = image.strip_prefix("library/").unwrap_or(image);
        let tag = image.strip_prefix("python:")?;
        let mut parts = tag.split(|c: char| !c.is_ascii_digit());
        let (major, minor) = (parts.next()?, parts.next()?);
        let v = format!("{major}.{minor}");
        python_minor(&v).is_ok().then_some(v)
    })
}

/// The `(3, minor)` versions the project says it supports: its
/// `Programming Language :: Python :: 3.N` classifiers (pyproject.toml, else
/// setup.py), without those `requires-python` excludes.
pub fn supported(project: &Path) -> Vec<(u32, u32)> {
    let pyproject = fs::read_to_string(project.join("pyproject.toml")).unwrap_or_default();
    let setup = fs::read_to_string(project.join("setup.py")).unwrap_or_default();
    let (mut classifiers, mut requires) = from_pyproject(&pyproject);
    if classifiers.is_empty() {
        classifiers = classifier_minors(&setup);
    }
    if requires.is_none() {
        requires = setup_python_requires(&setup);
    }
    classifiers
        .into_iter()
        .filter(|m| requires.as_deref().is_none_or(|r| allows(r, *m)))
        .collect()
}

fn from_pyproject(text: &str) -> (Vec<(u32, u32)>, Option<String>) {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return (vec![], None);
    };
    let project = doc.get("project");
    let classifiers = project
        .and_then(|p| p.get("classifiers"))
        .and_then(|c| c.as_array())
        .map(|a| {
            let joined: Vec<&str> = a.iter().filter_map(|v| v.as_str()).collect();
            classifier_minors(&joined.join("\n"))
        })
        .unwrap_or_default();
    let requires = project
        .and_then(|p| p.get("requires-python"))
        .and_then(|r| r.as_str())
        .map(String::from);
    (classifiers, requires)
}

/// Every `Programming Language :: Python :: 3.N` in `text`, once, in order.
fn classifier_minors(text: &str) -> Vec<(u32, u32)> {
    const PREFIX: &str = "Programming Language :: Python :: 3.";
    let mut out = Vec::new();
    for (i, _) in text.match_indices(PREFIX) {
        let digits: String = text[i + PREFIX.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(minor) = digits.parse() {
            if !out.contains(&(3, minor)) {
                out.push((3, minor));
            }
        }
    }
    out
}

/// `python_requires=">=3.9.3"` in a setup.py.
fn setup_python_requires(text: &str) -> Option<String> {
    let rest = &text[text.find("python_requires")? + "python_requires".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    Some(body[..body.find(quote)?].to_string())
}

/// Whether the specifier set `spec` (`>=3.10`, `>=3.9.3,<3.13`) admits
/// Python `3.minor` at all; clauses it does not understand admit it.
pub fn allows(spec: &str, (major, minor): (u32, u32)) -> bool {
    spec.split(',').map(str::trim).all(|clause| {
        let (op, v) = match clause.find(|c: char| c.is_ascii_digit()) {
            Some(i) => (clause[..i].trim(), &clause[i..]),
            None => return true,
        };
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        let (Some(Some(a)), Some(Some(b))) = (parts.next(), parts.next()) else {
            return true;
        };
        let patch = parts.next().flatten();
        let (have, want) = ((major, minor), (a, b));
        match op {
            ">=" | ">" => have >= want,
            "<" => have < want || (have == want && patch.is_some_and(|p| p > 0)),
            "<=" => have <= want,
            "==" | "===" => have == want,
            "~=" if patch.is_some() => have == want,
            "~=" => have >= want,
            // `!=3.11` is 3.11.0 alone; `!=3.11.*` the whole minor.
            "!=" => !(have == want && v.ends_with(".*")),
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_from_lines() {
        assert_eq!(
            dockerfile_python("ARG X\nFROM python:3.14-slim AS base\n").as_deref(),
            Some("3.14")
        );
        assert_eq!(
            dockerfile_python("from --platform=$P docker.io/library/python:3.12.4-bookworm\n")
                .as_deref(),
            Some("3.12")
        );
        assert_eq!(dockerfile_python("FROM debian:bookworm\n"), None);
        assert_eq!(dockerfile_python("FROM python:latest\n"), None);
    }

    #[test]
    fn specifiers_bound_minors() {
        assert!(allows(">=3.10", (3, 14)));
        assert!(!allows(">=3.10", (3, 9)));
        assert!(allows(">=3.9.3", (3, 9)));
        assert!(!allows(">=3.9.3,<3.12", (3, 12)));
        assert!(allows(">=3.9.3,<3.12", (3, 11)));
        assert!(allows("<3.12.1", (3, 12)));
        assert!(allows("!=3.11", (3, 11)));
        assert!(!allows("!=3.11.*", (3, 11)));
        assert!(allows("!=3.11.2", (3, 11)));
        assert!(allows("whatever", (3, 7)));
    }

    fn project_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = crate::fsx::scratch("python-choice");
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    fn three() -> Vec<String> {
        ["3.11", "3.13", "3.14"].map(String::from).to_vec()
    }

    fn pick(dir: &Path, explicit: Option<&str>) -> Python {
        choose(&Choice {
            explicit,
            project: dir,
            name: "libertem",
            routes: &three(),
            configured: "3.11",
        })
        .unwrap()
    }

    const CLASSIFIERS: &str = "[project]\nrequires-python = \">=3.10\"\nclassifiers = [\n\
        \"Programming Language :: Python :: 3.10\",\n\"Programming Language :: Python :: 3.12\",\n\
        \"Programming Language :: Python :: 3.13\",\n\"Programming Language :: Python :: 3.14\",\n]\n";

    #[test]
    fn the_default_follows_the_project() {
        // Its own image first.
        let dir = project_with(&[
            ("pyproject.toml", CLASSIFIERS),
            ("packaging/docker/Dockerfile", "FROM python:3.13-slim\n"),
        ]);
        let p = pick(&dir, None);
        assert_eq!(p.version, "3.13");
        assert!(p.why.contains("packaging/docker/Dockerfile"), "{p:?}");
        // --python wins.
        assert_eq!(pick(&dir, Some("3.11")).version, "3.11");
        fs::remove_dir_all(&dir).unwrap();

        // Else the newest supported by both: 3.14.
        let dir = project_with(&[("pyproject.toml", CLASSIFIERS)]);
        let p = pick(&dir, None);
        assert_eq!(p.version, "3.14");
        assert!(p.why.contains("newest"), "{p:?}");
        fs::remove_dir_all(&dir).unwrap();

        // A setup.py project (0.14.x): classifiers up to 3.12 -> 3.11.
        let setup = "setup(\n python_requires='>=3.9.3',\n classifiers=[\n \
            'Programming Language :: Python :: 3.9',\n 'Programming Language :: Python :: 3.12',\n \
            'Programming Language :: Python :: 3.11',\n ])\n";
        let dir = project_with(&[
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\"setuptools\"]\n",
            ),
            ("setup.py", setup),
        ]);
        assert_eq!(pick(&dir, None).version, "3.11");
        fs::remove_dir_all(&dir).unwrap();

        // Nothing in common: the project's newest (it may be pullable).
        let old = "[project]\nclassifiers = [\"Programming Language :: Python :: 3.9\", \
            \"Programming Language :: Python :: 3.10\"]\n";
        let dir = project_with(&[("pyproject.toml", old)]);
        assert_eq!(pick(&dir, None).version, "3.10");
        let p = pick(&dir, Some("3.14"));
        assert!(p.why.contains("does not list it"), "{p:?}");
        fs::remove_dir_all(&dir).unwrap();

        // No Pythons listed at all: the configured one, saying so.
        let dir = project_with(&[("pyproject.toml", "[project]\nname = \"x\"\n")]);
        let p = pick(&dir, None);
        assert_eq!(p.version, "3.11");
        assert!(p.why.contains("image.python"), "{p:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn routes_are_the_suites_and_present_bases() {
        let ws = crate::workspace::for_tests();
        assert_eq!(routes(&ws, &[]), ["3.11", "3.13", "3.14"]);
        let with_312 = routes(&ws, &["python:3.12-slim".to_string()]);
        assert_eq!(with_312, ["3.11", "3.12", "3.13", "3.14"]);
    }

    #[test]
    fn a_bad_python_is_named() {
        let dir = project_with(&[]);
        let err = choose(&Choice {
            explicit: Some("3"),
            project: &dir,
            name: "x",
            routes: &three(),
            configured: "3.11",
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("--python"), "{err:#}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
