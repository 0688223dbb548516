//! A project's tree: the stamps that tell whether its source changed, and
//! its copy into the build context.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Names never copied into the build context: VCS data, caches, build output,
/// virtualenvs and the JS client's node_modules.
pub const SKIP: &[&str] = &[
    ".git",
    ".hg",
    ".tox",
    ".nox",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ipynb_checkpoints",
    ".benchmarks",
    "build",
    "dist",
    "target",
    ".dist-test-sha256",
];

pub fn skipped(name: &str) -> bool {
    SKIP.contains(&name) || name.ends_with(".egg-info") || name.ends_with(".pyc")
}

/// The state of a project's Python source as a short digest: the path, size
/// and modification time of every `.py` file (as numba and Python's own
/// byte-code checks see a file). Reads no content, so it costs milliseconds.
pub fn source_stamp(dir: &Path) -> Result<String> {
    stamp(dir, Stamp::PythonSource)
}

/// What [`source_stamp`] digests: each `.py` file's path (relative to
/// `dir`) with `size mtime`, so that two listings tell which files changed.
pub fn source_listing(dir: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    Ok(listing(dir, Stamp::PythonSource)?
        .into_iter()
        .filter_map(|line| {
            let mut parts = line.rsplitn(3, ' ');
            let (mtime, size, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((path.to_string(), format!("{size} {mtime}")))
        })
        .collect())
}

/// Every file under `dir` (none skipped but `__pycache__` and
/// `.pytest_cache`, which only caches write), symlinks followed, as a
/// short digest of paths, sizes and modification times; a missing `dir`
/// has its own stamp.
pub fn full_stamp(dir: &Path) -> Result<String> {
    if !dir.is_dir() {
        return Ok("missing".into());
    }
    stamp(dir, Stamp::Everything)
}

/// What a stamp looks at.
#[derive(Clone, Copy, PartialEq)]
enum Stamp {
    /// `.py` files, the names project copies skip left out, links not followed.
    PythonSource,
    /// Every file, only caches left out, links followed.
    Everything,
}

impl Stamp {
    fn skips(self, name: &str) -> bool {
        match self {
            Stamp::PythonSource => skipped(name),
            Stamp::Everything => name == "__pycache__" || name == ".pytest_cache",
        }
    }
}

fn stamp(dir: &Path, how: Stamp) -> Result<String> {
    let lines = listing(dir, how)?;
    Ok(crate::digest::sha256_bytes(lines.join("\n").as_bytes())[..12].to_string())
}

/// One line per file: `path size mtime` (or `path dangling`), sorted.
fn listing(dir: &Path, how: Stamp) -> Result<Vec<String>> {
    fn walk(dir: &Path, rel: &Path, how: Stamp, depth: usize, out: &mut Vec<String>) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let (name_s, rel) = (name.to_string_lossy(), rel.join(&name));
            if how.skips(&name_s) {
                continue;
            }
            let meta = match how {
                Stamp::PythonSource if entry.file_type()?.is_symlink() => continue,
                Stamp::PythonSource => entry.metadata()?,
                // A dangling link is recorded as such.
                Stamp::Everything => match fs::metadata(entry.path()) {
                    Ok(meta) => meta,
                    Err(_) => {
                        out.push(format!("{} dangling", rel.display()));
                        continue;
                    }
                },
            };
            if meta.is_dir() {
                // Followed links may make a cycle: it ends somewhere.
                if depth < 32 {
                    walk(&entry.path(), &rel, how, depth + 1, out)?;
                }
            } else if meta.is_file() && (how == Stamp::Everything || name_s.ends_with(".py")) {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out.push(format!("{} {} {mtime}", rel.display(), meta.len()));
            }
        }
        Ok(())
    }
    let mut lines = Vec::new();
    walk(dir, Path::new(""), how, 0, &mut lines)?;
    Ok(lines)
}

/// Mirror `src` into `dst`, copying only files whose content differs and
/// removing what `src` no longer has. Returns how many files were written.
pub fn sync_tree(src: &Path, dst: &Path) -> Result<usize> {
    fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    let mut written = 0;
    let mut keep = Vec::new();
    for entry in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name.to_string_lossy()) {
            continue;
        }
        let ty = entry.file_type()?;
        let (from, to) = (entry.path(), dst.join(&name));
        if ty.is_dir() {
            if to.is_file() || to.is_symlink() {
                fs::remove_file(&to)?;
            }
            written += sync_tree(&from, &to)?;
        } else if ty.is_file() {
            if to.is_dir() {
                fs::remove_dir_all(&to)?;
            }
            let same = match (fs::metadata(&to), fs::metadata(&from)) {
                (Ok(a), Ok(b)) if a.len() == b.len() => fs::read(&to)? == fs::read(&from)?,
                _ => false,
            };
            if !same {
                fs::copy(&from, &to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
                written += 1;
            }
        } else {
            // Symlinks and special files are not followed into the image.
            continue;
        }
        keep.push(name);
    }
    for entry in fs::read_dir(dst)? {
        let entry = entry?;
        if !keep.contains(&entry.file_name()) {
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&p)?;
            } else {
                fs::remove_file(&p)?;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        crate::fsx::scratch(&format!("tree-{name}"))
    }

    #[test]
    fn stamps_see_what_they_should() {
        let d = tmp("stamps");
        fs::create_dir_all(d.join("dist")).unwrap();
        fs::write(d.join("a.py"), "x = 1\n").unwrap();
        fs::write(d.join("data.json"), "[]").unwrap();
        fs::write(d.join("dist/b.py"), "y = 1\n").unwrap();
        let (source, full) = (source_stamp(&d).unwrap(), full_stamp(&d).unwrap());
        // Only the full stamp sees other files and folders named like build output.
        fs::write(d.join("data.json"), "[1]").unwrap();
        assert_eq!(source_stamp(&d).unwrap(), source);
        let full2 = full_stamp(&d).unwrap();
        assert_ne!(full2, full);
        fs::write(d.join("dist/b.py"), "y = 22\n").unwrap();
        assert_eq!(source_stamp(&d).unwrap(), source);
        let full3 = full_stamp(&d).unwrap();
        assert_ne!(full3, full2);
        // The full stamp follows links and records dangling ones.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("data.json"), d.join("link.json")).unwrap();
            let linked = full_stamp(&d).unwrap();
            assert_ne!(linked, full3);
            fs::write(d.join("data.json"), "[1, 2]").unwrap();
            assert_ne!(full_stamp(&d).unwrap(), linked, "the target changed");
            std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
            assert!(full_stamp(&d).is_ok());
        }
        assert_eq!(full_stamp(&d.join("none")).unwrap(), "missing");
        fs::write(d.join("a.py"), "x = 22\n").unwrap();
        assert_ne!(source_stamp(&d).unwrap(), source);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sync_copies_changes_only_and_prunes() {
        let root = tmp("sync");
        let (src, dst) = (root.join("src"), root.join("dst"));
        fs::create_dir_all(src.join("pkg/__pycache__")).unwrap();
        fs::create_dir_all(src.join(".git")).unwrap();
        fs::write(src.join("pkg/a.py"), "a = 1\n").unwrap();
        fs::write(src.join("pkg/__pycache__/a.pyc"), "x").unwrap();
        fs::write(src.join(".git/HEAD"), "ref").unwrap();
        fs::write(src.join("setup.cfg"), "").unwrap();
        assert_eq!(sync_tree(&src, &dst).unwrap(), 2);
        assert!(!dst.join(".git").exists());
        assert!(!dst.join("pkg/__pycache__").exists());
        assert_eq!(sync_tree(&src, &dst).unwrap(), 0, "nothing changed");
        fs::write(src.join("pkg/a.py"), "a = 2\n").unwrap();
        fs::remove_file(src.join("setup.cfg")).unwrap();
        assert_eq!(sync_tree(&src, &dst).unwrap(), 1);
        assert_eq!(fs::read_to_string(dst.join("pkg/a.py")).unwrap(), "a = 2\n");
        assert!(
            !dst.join("setup.cfg").exists(),
            "removed upstream, removed here"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_source_stamp_follows_python_files_only() {
        let root = tmp("stamp");
        fs::create_dir_all(root.join("src/pkg/__pycache__")).unwrap();
        fs::write(root.join("src/pkg/a.py"), "a = 1\n").unwrap();
        fs::write(root.join("README.rst"), "r").unwrap();
        let first = source_stamp(&root).unwrap();
        assert_eq!(source_stamp(&root).unwrap(), first, "stable");
        fs::write(root.join("README.rst"), "readme, edited").unwrap();
        fs::write(root.join("src/pkg/__pycache__/a.cpython-311.pyc"), "x").unwrap();
        assert_eq!(source_stamp(&root).unwrap(), first, "not Python source");
        fs::write(root.join("src/pkg/a.py"), "a = 22\n").unwrap();
        let edited = source_stamp(&root).unwrap();
        assert_ne!(edited, first, "an edit");
        fs::write(root.join("src/pkg/b.py"), "").unwrap();
        assert_ne!(source_stamp(&root).unwrap(), edited, "a new module");
        fs::remove_dir_all(&root).unwrap();
    }
}
