//! The generated detector data, checked with LiberTEM's own readers in the
//! image (packaging/docker/testdata/check.py): every format opens with the
//! shape its dist test expects, and a truncated file of any format fails.

use crate::common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const FORMATS: [&str; 8] = ["mrc", "dm", "k2is", "frms6", "mib", "blo", "empad", "tvips"];

/// `cargo xtask build` and `testdata` once for this test binary: the image
/// and the set.
fn generated_set() -> &'static PathBuf {
    static SET: OnceLock<PathBuf> = OnceLock::new();
    SET.get_or_init(|| {
        // The image the checks run in (`testdata` builds none when the set
        // is there already).
        let o = xtask(&["build", "-q"]);
        assert!(o.status.success(), "cargo xtask build:\n{}", stderr(&o));
        let o = xtask(&["testdata"]);
        assert!(o.status.success(), "cargo xtask testdata:\n{}", stderr(&o));
        // "test data: 23 files, 238 MB in /…/target/dist-test/testdata/<digest>"
        let out = stdout(&o);
        let dir = out
            .split(" in ")
            .last()
            .map(|d| PathBuf::from(d.trim()))
            .unwrap_or_else(|| panic!("no folder in {out:?}"));
        assert!(dir.join(".complete").is_file(), "{}", dir.display());
        dir
    })
}

/// A numba cache for the readers' jitted code that outlives the test run,
/// so that the checks do not compile it again every time; numba checks
/// each entry against the image's source files, so a rebuilt image never
/// meets code compiled from another.
fn numba_cache() -> PathBuf {
    let dir = root().join("target/xtask-tests/testdata-numba-cache");
    fs::create_dir_all(&dir).unwrap();
    // The image's user (uid 1000) writes it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    }
    dir
}

/// check.py over `data` in the checkout's image, as the services' user.
fn check(data: &Path) -> Output {
    let image = release_image(&root());
    let gen = root().join("packaging/docker/testdata");
    Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--volume"])
        .arg(format!("{}:/opt/dist-test/testdata:ro", gen.display()))
        .arg("--volume")
        .arg(format!("{}:/numba-cache", numba_cache().display()))
        .arg("--volume")
        .arg(format!("{}:/data:ro", data.display()))
        .arg("--volume")
        .arg(format!("{}:/venv:ro", runtime_of(&image)))
        .args([
            &image,
            "python3",
            "/opt/dist-test/testdata/check.py",
            "/data",
        ])
        .output()
        .expect("running docker")
}

fn lines_for(out: &str, word: &str) -> Vec<String> {
    FORMATS
        .iter()
        .filter(|f| out.lines().any(|l| l.starts_with(&format!("{word} {f} "))))
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn every_generated_format_opens_with_the_shape_its_test_expects() {
    if !engine_available() {
        return;
    }
    let o = check(generated_set());
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert_eq!(lines_for(&out, "ok"), FORMATS, "{out}");
}

#[test]
fn a_truncated_file_of_any_format_fails_its_check() {
    if !engine_available() {
        return;
    }
    let set = generated_set();
    // A copy of the set made of hard links, in which one file of each format
    // is replaced by a copy cut in half.
    let copy = root()
        .join("target/xtask-tests")
        .join(format!("truncated-testdata-{}", std::process::id()));
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    assert!(Command::new("cp")
        .arg("-al")
        .arg(set)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    for file in [
        "mrc/20200821_92978_movie.mrc",
        "dm/2018-7-17_15_29_0002.dm4",
        "Capture52/Capture52_8.bin",
        "frms6/C16_15_24_151203_019_002.frms6",
        "default.mib",
        "default.blo",
        "EMPAD/scan_11_x4_y4.raw",
        "TVIPS/rec_20200623_080237_000.tvips",
    ] {
        let path = copy.join(file);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        fs::remove_file(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    let o = check(&copy);
    let out = stdout(&o);
    let _ = fs::remove_dir_all(&copy);
    assert!(!o.status.success(), "truncated files passed:\n{out}");
    assert_eq!(lines_for(&out, "FAIL"), FORMATS, "{out}\n{}", stderr(&o));
}
