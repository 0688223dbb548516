//! Which tests a run names. `pytest tests/ -m dist` imports every test
//! module of LiberTEM (4,175 tests) to select the few marked `dist`, which
//! costs the tests container seconds of CPU while the cluster starts on the
//! same cores. The selection depends only on what pytest collects from, so
//! after a run the node ids it selected are remembered
//! (`target/dist-test/selection.json`) with a key over all of that: the
//! image (pytest, its plugins, every installed package), every file under
//! the project's `tests/`, its `conftest.py` files and its pytest
//! configuration, which `.py` files its source has (their paths: an added
//! or removed module may change what collects), the test data folder's
//! listing, the harness and compose files, and the cluster's shape (size
//! and backend). An edit inside an existing module of the project's source
//! keeps the key: which tests are marked `dist` is written in the tests, and
//! the named modules are collected whole, so an edit that changes their
//! parametrisation still runs every dist test they hold. The next run with the
//! same key and no pytest arguments of the user's names the modules that
//! hold them instead of `tests/` (still with `-m dist`), so pytest imports
//! only those and selects the same tests in the same order. Any change to a key input
//! collects the whole suite again; a run whose selection differs from what
//! it named fails and forgets it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::digest::{sha256_bytes, sha256_file};
use crate::project::{full_stamp, source_listing};
use crate::workspace::Workspace;

/// The files beside the Python source that shape what pytest collects.
const PYTEST_CONFIG: &[&str] = &["pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini"];

/// What a selection was made from (see the module docs).
pub struct Inputs<'a> {
    /// The image the tests container runs.
    pub image_id: &'a str,
    pub source: &'a Path,
    pub data: &'a Path,
    /// packaging/docker: the harness plugins and the compose files.
    pub docker_dir: &'a Path,
    /// The tests container's pytest command with `tests/`.
    pub command: &'a [String],
    /// The cluster's size and backend, as words.
    pub shape: &'a str,
}

impl Inputs<'_> {
    pub fn key(&self) -> Result<String> {
        let mut text = format!(
            "image {}\nsource {}\ntests {}\ndata {} {}\ncommand {}\n",
            self.image_id,
            source_shape(self.source)?,
            // Every file there, not only Python: a conftest may read any.
            full_stamp(&self.source.join("tests"))?,
            self.data.display(),
            full_stamp(self.data)?,
            self.command.join(" ")
        );
        text.push_str(&format!("cluster {}\n", self.shape));
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

/// Which `.py` files the project has, and the contents (size, time) of its
/// `conftest.py` files, as a short digest: what of the source decides what
/// pytest collects.
fn source_shape(source: &Path) -> Result<String> {
    let mut text = String::new();
    for (path, stamp) in source_listing(source)? {
        let conftest = Path::new(&path).file_name() == Some("conftest.py".as_ref());
        let stamp = if conftest { stamp.as_str() } else { "" };
        text.push_str(&format!("{path} {stamp}\n"));
    }
    Ok(sha256_bytes(text.as_bytes())[..16].to_string())
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

/// What a run does with its selection: it either names the modules of a
/// remembered selection or collects the suite, and either way may remember
/// what pytest selected.
#[derive(Debug, Clone)]
pub struct Choice {
    pub key: String,
    /// The remembered selection made from `key`, whose modules the run names.
    pub named: Option<Remembered>,
    file: PathBuf,
}

/// What [`Choice::settle`] has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// All is well: the selection was confirmed, remembered, or left alone.
    Quiet,
    /// Something the user should read; the run's result stands.
    Warning(String),
    /// pytest selected other tests than the run named: the run did not run
    /// the suite `pytest tests/ -m dist` would have, and must not pass.
    Mismatch(String),
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
    /// pytest selected otherwise is forgotten and fails the run; one that
    /// pytest ended before selecting is forgotten with a warning. A run
    /// stopped before pytest collected anything changes nothing.
    pub fn settle(
        &self,
        run_id: &str,
        items: Option<&[String]>,
        pytest_code: Option<i32>,
    ) -> Settled {
        let why = |e: anyhow::Error| format!(" ({e:#})");
        match (&self.named, items) {
            (Some(r), Some(items)) if r.items == items => Settled::Quiet,
            (Some(r), Some(items)) => {
                let failed = self.update(None).err().map_or(String::new(), why);
                Settled::Mismatch(format!(
                    "pytest selected {} tests from the modules named from run {}, which \
                     selected {} there: something pytest collects from changed without \
                     changing the key, so this run did not run the dist suite; the next \
                     run collects the whole suite again{failed}",
                    items.len(),
                    r.run_id,
                    r.items.len()
                ))
            }
            (Some(r), None) => match pytest_code {
                Some(c) => {
                    let failed = self.update(None).err().map_or(String::new(), why);
                    Settled::Warning(format!(
                        "warning: pytest ended (exit code {c}) before selecting the {} tests \
                         named from run {}; the next run collects the whole suite again{failed}",
                        r.items.len(),
                        r.run_id
                    ))
                }
                None => Settled::Quiet,
            },
            (None, Some(items)) if matches!(pytest_code, Some(0 | 1)) && !items.is_empty() => {
                let r = Remembered {
                    key: self.key.clone(),
                    run_id: run_id.to_string(),
                    items: items.to_vec(),
                };
                match self.update(Some(r)) {
                    Ok(()) => Settled::Quiet,
                    Err(e) => Settled::Warning(format!(
                        "warning: {e:#}; the next run collects the whole suite"
                    )),
                }
            }
            (None, _) => Settled::Quiet,
        }
    }

    /// Drop this key's selection and, given one, put it first.
    fn update(&self, new: Option<Remembered>) -> Result<()> {
        let mut all = read(&self.file);
        all.selections.retain(|r| r.key != self.key);
        if let Some(r) = new {
            all.selections.insert(0, r);
        }
        all.selections.truncate(KEPT);
        let text = serde_json::to_string_pretty(&all).expect("selections serialise") + "\n";
        crate::fsx::write_atomic(&self.file, text.as_bytes())
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
        crate::fsx::scratch(&format!("selection-{name}"))
    }

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("src/pkg")).unwrap();
        fs::create_dir_all(dir.join("tests/dist")).unwrap();
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
                shape: "2x2 compose",
            }
            .key()
            .unwrap()
        };
        let k0 = key("sha256:1", &command);
        assert_eq!(k0, key("sha256:1", &command), "stable");
        assert_ne!(k0, key("sha256:2", &command), "image");
        assert_ne!(k0, key("sha256:1", &command[..1]), "command");
        let other_shape = Inputs {
            image_id: "sha256:1",
            source: d,
            data: &d.join("data"),
            docker_dir: &d.join("docker"),
            command: &command,
            shape: "2x3 compose",
        };
        assert_ne!(k0, other_shape.key().unwrap(), "the cluster's shape");
        let mut last = k0;
        for (path, text) in [
            ("tests/test_a.py", "def test_a(): assert 1\n"),
            ("tests/params.json", "[1, 2]"),
            (
                "tests/dist/test_in_a_folder_named_dist.py",
                "def test_b(): pass\n",
            ),
            ("src/pkg/b.py", "y = 1\n"),
            ("conftest.py", "import pkg\n"),
            ("src/pkg/conftest.py", "import pkg\n"),
            ("pytest.ini", "[pytest]\nmarkers = dist\n"),
            ("data/more.raw", "1"),
            ("docker/dist_test_ready.py", "changed"),
        ] {
            fs::write(d.join(path), text).unwrap();
            let k = key("sha256:1", &command);
            assert_ne!(k, last, "{path}");
            last = k;
        }
        // An edit inside a module of the source: the same selection.
        fs::write(d.join("src/pkg/a.py"), "x = 22  # longer\n").unwrap();
        assert_eq!(key("sha256:1", &command), last, "an edit of src/pkg/a.py");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn remembered_only_for_its_key_and_forgotten_when_pytest_disagrees() {
        let mut ws = crate::workspace::for_tests();
        ws.target = scratch("remember");
        let items: Vec<String> = vec!["tests/test_a.py::test_a".into()];
        let recall = |key: &str| Choice::recall(&ws, key.into());
        let fresh = recall("k1");
        assert_eq!(fresh.named, None);
        // A run that did not get to run tests remembers nothing.
        assert_eq!(fresh.settle("r0", Some(&items), Some(4)), Settled::Quiet);
        assert_eq!(recall("k1").named, None);
        assert_eq!(fresh.settle("r1", Some(&items), Some(1)), Settled::Quiet);
        let named = recall("k1");
        let r = named.named.clone().expect("remembered");
        assert_eq!((r.run_id.as_str(), &r.items), ("r1", &items));
        assert_eq!(recall("k2").named, None, "another key");
        // A second key's selection is kept beside the first.
        recall("k2").settle("r9", Some(&items), Some(0));
        assert!(recall("k2").named.is_some());
        assert_eq!(named.settle("r2", Some(&items), Some(0)), Settled::Quiet);
        assert!(recall("k1").named.is_some(), "kept when pytest agrees");
        // Stopped before pytest collected: kept, nothing said.
        assert_eq!(named.settle("r3", None, None), Settled::Quiet);
        assert!(recall("k1").named.is_some());
        // pytest ended before selecting (a module it could not find: exit
        // code 4): forgotten, with a warning.
        let Settled::Warning(w) = named.settle("r4", None, Some(4)) else {
            panic!("a warning")
        };
        assert!(
            w.contains("exit code 4) before selecting the 1 tests named from run r1"),
            "{w}"
        );
        assert_eq!(recall("k1").named, None);
        // pytest selected other tests: forgotten, and the run fails.
        recall("k1").settle("r5", Some(&items), Some(0));
        let named = recall("k1");
        let Settled::Mismatch(m) = named.settle("r6", Some(&[]), Some(5)) else {
            panic!("a mismatch")
        };
        assert!(
            m.contains("selected 0 tests from the modules named from run r5"),
            "{m}"
        );
        assert_eq!(recall("k1").named, None, "forgotten");
        assert!(recall("k2").named.is_some(), "the other stays");
        for i in 0..KEPT {
            recall(&format!("n{i}")).settle("r", Some(&items), Some(0));
        }
        assert_eq!(recall("k2").named, None, "only the newest are kept");
        fs::remove_dir_all(&ws.target).unwrap();
    }
}
