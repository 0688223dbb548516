//! Which tests a run names. `pytest tests/ -m dist` imports every test
//! module of LiberTEM (4,175 tests) to select the few marked `dist`, which
//! costs the tests container seconds of CPU while the cluster starts on the
//! same cores. The selection depends only on what pytest collects from, so
//! after a run the node ids it selected are remembered
//! (`target/dist-test/selection.json`) with a key over all of that: the
//! image (pytest, its plugins, every installed package), the project's
//! Python source and pytest configuration, the test data folder's listing,
//! and the harness and compose files. The next run with the same key and no
//! pytest arguments of the user's names the modules that hold them instead
//! of `tests/` (still with `-m dist`), so pytest imports only those and
//! selects the same tests in the same order. Any change to a key input collects the
//! whole suite again; a run whose selection differs from what it named
//! forgets it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::{sha256_bytes, sha256_file};
use crate::project::{source_stamp, tree_stamp};
use crate::workspace::Workspace;

/// The files beside the Python source that shape what pytest collects.
const PYTEST_CONFIG: &[&str] = &["pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini"];

/// What a selection was made from (see the module docs).
pub struct Inputs<'a> {
    pub image_id: &'a str,
    pub source: &'a Path,
    pub data: &'a Path,
    /// packaging/docker: the harness plugins and the compose files.
    pub docker_dir: &'a Path,
    /// The tests container's pytest command with `tests/`.
    pub command: &'a [String],
}

impl Inputs<'_> {
    pub fn key(&self) -> Result<String> {
        let mut text = format!(
            "image {}\nsource {}\ndata {} {}\ncommand {}\n",
            self.image_id,
            source_stamp(self.source)?,
            self.data.display(),
            tree_stamp(self.data, |_| true)?,
            self.command.join(" ")
        );
        for name in PYTEST_CONFIG {
            let file = self.source.join(name);
            if file.is_file() {
                text.push_str(&format!("{} {name}\n", sha256_file(&file)?));
            }
        }
        for name in [
            "dist_test_harness.py",
            "dist_test_ready.py",
            "docker-compose.yml",
            "services.yml",
        ] {
            let file = self.docker_dir.join(name);
            text.push_str(&format!("{} {name}\n", sha256_file(&file)?));
        }
        Ok(sha256_bytes(text.as_bytes())[..16].to_string())
    }
}

/// The node ids a run selected, and what they were selected from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub key: String,
    /// The run that collected them.
    pub run_id: String,
    pub items: Vec<String>,
}

impl Remembered {
    /// The test modules that hold the items, in the order pytest met them:
    /// what a run names. With `-m dist` pytest selects the same items from
    /// them, and a module path always reads back, where a parametrised
    /// node id need not (the items are still compared after the run).
    pub fn modules(&self) -> Vec<String> {
        let mut modules: Vec<String> = Vec::new();
        for item in &self.items {
            let module = item.split("::").next().unwrap_or(item);
            if !modules.iter().any(|m| m == module) {
                modules.push(module.to_string());
            }
        }
        modules
    }
}

/// `selection.json`: the selections of the last few keys, newest first, so
/// that switching between projects or data sets (`--no-testdata`) does not
/// collect every time.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Remembrance {
    selections: Vec<Remembered>,
}

/// How many keys' selections are kept.
const KEPT: usize = 8;

/// What a run does with its selection: it either names remembered ids or
/// collects the suite, and either way may remember what pytest selected.
#[derive(Debug, Clone)]
pub struct Choice {
    pub key: String,
    /// The remembered selection made from `key`, which the run names.
    pub named: Option<Remembered>,
    file: PathBuf,
}

impl Choice {
    /// The choice for a run whose inputs have `key`: name the remembered
    /// selection if one was made from the same key.
    pub fn recall(ws: &Workspace, key: String) -> Choice {
        let file = ws.target.join("selection.json");
        let named = read(&file)
            .selections
            .into_iter()
            .find(|r| r.key == key && !r.items.is_empty());
        Choice { key, named, file }
    }

    /// After the run: what pytest selected (`items`, from its timeline;
    /// `None` when pytest wrote none) is remembered when it collected the
    /// suite and ran the tests (exit code 0 or 1). A named selection that
    /// pytest did not select exactly, or did not get to select, is
    /// forgotten. Returns a line to print when something is off.
    pub fn settle(
        &self,
        run_id: &str,
        items: Option<&[String]>,
        pytest_code: Option<i32>,
    ) -> Option<String> {
        let update = match (&self.named, items) {
            (Some(r), Some(items)) if r.items == items => return None,
            (Some(r), selected) => {
                let why = self
                    .update(None)
                    .err()
                    .map_or(String::new(), |e| format!(" ({e:#})"));
                let what = match (selected, pytest_code) {
                    (Some(items), _) => format!("pytest selected {} tests where", items.len()),
                    (None, Some(c)) => format!("pytest ended (exit code {c}) before selecting"),
                    // Stopped from outside before pytest collected: nothing to say.
                    (None, None) => return None,
                };
                return Some(format!(
                    "warning: {what} {} were named from run {}; \
                     the next run collects the whole suite again{why}",
                    r.items.len(),
                    r.run_id
                ));
            }
            (None, Some(items)) if matches!(pytest_code, Some(0 | 1)) && !items.is_empty() => self
                .update(Some(Remembered {
                    key: self.key.clone(),
                    run_id: run_id.to_string(),
                    items: items.to_vec(),
                })),
            (None, _) => return None,
        };
        update
            .err()
            .map(|e| format!("warning: {e:#}; the next run collects the whole suite"))
    }

    /// Drop this key's selection and, given one, put it first.
    fn update(&self, new: Option<Remembered>) -> Result<()> {
        let mut all = read(&self.file);
        all.selections.retain(|r| r.key != self.key);
        if let Some(r) = new {
            all.selections.insert(0, r);
        }
        all.selections.truncate(KEPT);
        let tmp = self.file.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&all).expect("selections serialise") + "\n";
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &self.file).with_context(|| format!("writing {}", self.file.display()))
    }
}

/// The remembered selections; none when the file is missing or unreadable
/// (an older layout, a cut write): they are made again.
fn read(file: &Path) -> Remembrance {
    fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-selection-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("src/pkg")).unwrap();
        fs::create_dir_all(dir.join("tests")).unwrap();
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::create_dir_all(dir.join("docker")).unwrap();
        fs::write(dir.join("src/pkg/a.py"), "x = 1\n").unwrap();
        fs::write(dir.join("tests/test_a.py"), "def test_a(): pass\n").unwrap();
        fs::write(dir.join("pytest.ini"), "[pytest]\n").unwrap();
        fs::write(dir.join("data/frames.raw"), "0000").unwrap();
        for f in [
            "dist_test_harness.py",
            "dist_test_ready.py",
            "docker-compose.yml",
            "services.yml",
        ] {
            fs::write(dir.join("docker").join(f), f).unwrap();
        }
    }

    #[test]
    fn a_selection_names_its_modules_in_order() {
        let r = Remembered {
            key: "k".into(),
            run_id: "r".into(),
            items: [
                "tests/io/test_b.py::test_x[a::b]",
                "tests/io/test_b.py::TestC::test_y",
                "tests/test_a.py::test_z",
                "tests/io/test_b.py::test_late",
            ]
            .map(String::from)
            .to_vec(),
        };
        assert_eq!(r.modules(), ["tests/io/test_b.py", "tests/test_a.py"]);
    }

    #[test]
    fn every_input_moves_the_key() {
        let dir = scratch("key");
        let d = dir.as_path();
        tree(d);
        let command = vec!["pytest".to_string(), "tests/".into()];
        let key = |image: &str, command: &[String]| {
            Inputs {
                image_id: image,
                source: d,
                data: &d.join("data"),
                docker_dir: &d.join("docker"),
                command,
            }
            .key()
            .unwrap()
        };
        let k0 = key("sha256:1", &command);
        assert_eq!(k0, key("sha256:1", &command), "stable");
        assert_ne!(k0, key("sha256:2", &command), "image");
        assert_ne!(k0, key("sha256:1", &command[..1]), "command");
        let mut last = k0;
        for (path, text) in [
            ("tests/test_a.py", "def test_a(): assert 1\n"),
            ("src/pkg/a.py", "x = 22\n"),
            ("pytest.ini", "[pytest]\nmarkers = dist\n"),
            ("data/more.raw", "1"),
            ("docker/dist_test_ready.py", "changed"),
        ] {
            fs::write(d.join(path), text).unwrap();
            let k = key("sha256:1", &command);
            assert_ne!(k, last, "{path}");
            last = k;
        }
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn remembered_only_for_its_key_and_forgotten_when_pytest_disagrees() {
        let mut ws = crate::workspace::for_tests();
        ws.target = scratch("remember");
        let items: Vec<String> = vec!["tests/test_a.py::test_a".into()];
        let fresh = Choice::recall(&ws, "k1".into());
        assert_eq!(fresh.named, None);
        // A run that did not get to run tests remembers nothing.
        assert_eq!(fresh.settle("r0", Some(&items), Some(4)), None);
        assert_eq!(Choice::recall(&ws, "k1".into()).named, None);
        assert_eq!(fresh.settle("r1", Some(&items), Some(1)), None);
        let named = Choice::recall(&ws, "k1".into());
        let r = named.named.clone().expect("remembered");
        assert_eq!((r.run_id.as_str(), &r.items), ("r1", &items));
        assert_eq!(Choice::recall(&ws, "k2".into()).named, None, "another key");
        // A second key's selection is kept beside the first.
        Choice::recall(&ws, "k2".into()).settle("r9", Some(&items), Some(0));
        assert!(Choice::recall(&ws, "k2".into()).named.is_some());
        assert_eq!(named.settle("r2", Some(&items), Some(0)), None);
        assert!(
            Choice::recall(&ws, "k1".into()).named.is_some(),
            "kept when pytest agrees"
        );
        let warning = named.settle("r3", Some(&[]), Some(5)).expect("a warning");
        assert!(
            warning.contains("0 tests where 1 were named from run r1"),
            "{warning}"
        );
        assert_eq!(Choice::recall(&ws, "k1".into()).named, None, "forgotten");
        assert!(
            Choice::recall(&ws, "k2".into()).named.is_some(),
            "the other stays"
        );
        // A named run whose pytest never got to select (a node id it could
        // not find: exit code 4) forgets it too; one stopped from outside
        // before collecting says nothing, and forgets it all the same.
        Choice::recall(&ws, "k1".into()).settle("r4", Some(&items), Some(0));
        let named = Choice::recall(&ws, "k1".into());
        assert!(named.named.is_some());
        let warning = named.settle("r5", None, Some(4)).expect("a warning");
        assert!(
            warning.contains("exit code 4) before selecting 1 were named"),
            "{warning}"
        );
        assert_eq!(Choice::recall(&ws, "k1".into()).named, None);
        Choice::recall(&ws, "k1".into()).settle("r6", Some(&items), Some(0));
        let named = Choice::recall(&ws, "k1".into());
        assert_eq!(named.settle("r7", None, None), None);
        assert_eq!(
            Choice::recall(&ws, "k1".into()).named,
            None,
            "forgotten silently"
        );
        for i in 0..KEPT {
            Choice::recall(&ws, format!("n{i}")).settle("r", Some(&items), Some(0));
        }
        assert_eq!(
            Choice::recall(&ws, "k2".into()).named,
            None,
            "only the newest are kept"
        );
        fs::remove_dir_all(&ws.target).unwrap();
    }
}
