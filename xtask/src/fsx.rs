//! File-system helpers every owner of a file uses: whole-file replacement
//! (a reader never sees half a file, a failure leaves the old one as it
//! was), writes that touch nothing when the content is the same, folders the
//! services' user may write, and removal that does not mind absence.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The temporary name beside `path` that a write of this process goes
/// through: unique per process and thread, so that two writers never share it.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let dir = path.parent().context("a file path without a folder")?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    Ok(dir.join(format!(".{name}.tmp-{}-{thread}", std::process::id())))
}

/// Replace `path` with `data` whole: written beside it, then renamed over it.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path without a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = temp_beside(path)?;
    fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// [`write_atomic`], unless the file already holds `data` (its time stays).
pub fn write_if_changed(path: &Path, data: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() != Some(data) {
        write_atomic(path, data)?;
    }
    Ok(())
}

/// Copy `from` to `to` unless `to` already holds the same bytes.
pub fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let new = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_if_changed(to, &new)
}

/// Point the symlink `link` at `target` in one step (a new link renamed
/// over the old one): a reader finds the old target or the new, never none.
pub fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let tmp = temp_beside(link)?;
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("linking {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))
}

/// A folder every service's user (uid 1000, who need not be the host's
/// user) may write: the controller's connection files, the results.
pub fn writable_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
        .with_context(|| format!("opening {} to the services", dir.display()))
}

/// Remove a file; one that is not there is no error.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Remove a folder and all below it; one that is not there is no error.
pub fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Make `to` hold what `from` holds: files whose size or modification
/// time differ are copied (their time kept, so the next mirror skips
/// them), what `from` lacks is removed, symbolic links are followed. How
/// many files were copied.
pub fn mirror(from: &Path, to: &Path) -> Result<usize> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut copied = 0;
    let mut seen = std::collections::BTreeSet::new();
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        seen.insert(entry.file_name());
        let meta = fs::metadata(&src).with_context(|| format!("reading {}", src.display()))?;
        if meta.is_dir() {
            if dst.is_file() {
                fs::remove_file(&dst)?;
            }
            copied += mirror(&src, &dst)?;
            continue;
        }
        let same = fs::metadata(&dst).is_ok_and(|d| {
            d.is_file() && d.len() == meta.len() && d.modified().ok() == meta.modified().ok()
        });
        if same {
            continue;
        }
        if dst.is_dir() {
            fs::remove_dir_all(&dst)?;
        }
        fs::copy(&src, &dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        fs::File::options()
            .write(true)
            .open(&dst)
            .and_then(|f| f.set_modified(meta.modified()?))
            .with_context(|| format!("dating {}", dst.display()))?;
        copied += 1;
    }
    for entry in fs::read_dir(to)? {
        let entry = entry?;
        if !seen.contains(&entry.file_name()) {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(copied)
}

/// A scratch folder for a unit test, made empty.
#[cfg(test)]
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = scratch("atomic");
        let p = dir.join("r.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unchanged_file_is_not_written() {
        let dir = scratch("unchanged");
        let p = dir.join("a");
        write_if_changed(&p, b"x").unwrap();
        let t = fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_if_changed(&p, b"x").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), t);
        write_if_changed(&p, b"y").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"y");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mirror_copies_what_changed_and_removes_what_went() {
        let dir = scratch("mirror");
        let (from, to) = (dir.join("from"), dir.join("to"));
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::write(from.join("a"), "1").unwrap();
        fs::write(from.join("sub/b"), "22").unwrap();
        assert_eq!(mirror(&from, &to).unwrap(), 2);
        assert_eq!(fs::read_to_string(to.join("sub/b")).unwrap(), "22");
        assert_eq!(mirror(&from, &to).unwrap(), 0, "nothing changed");
        fs::write(from.join("a"), "333").unwrap();
        fs::remove_dir_all(from.join("sub")).unwrap();
        fs::write(to.join("stray"), "x").unwrap();
        assert_eq!(mirror(&from, &to).unwrap(), 1);
        let mut names: Vec<_> = fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a"]);
        assert_eq!(fs::read_to_string(to.join("a")).unwrap(), "333");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_is_replaced_in_one_step() {
        let dir = scratch("symlink");
        let link = dir.join("last");
        replace_symlink(Path::new("runs/a"), &link).unwrap();
        replace_symlink(Path::new("runs/b"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("runs/b"));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        remove_file(&link).unwrap();
        remove_file(&link).unwrap();
        remove_dir(&dir).unwrap();
        remove_dir(&dir).unwrap();
    }
}
