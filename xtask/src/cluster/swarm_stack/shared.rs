//! The one folder a swarm's nodes share: what LiberTEM's dist tests
//! themselves need at the same path on every node, and nothing else. The
//! detector data (the checkout's generated set is copied in; a
//! `TESTDATA_BASE_PATH` of the user's is used where it is) and LiberTEM's
//! scratch folder, which a test writes on the tests' container and the
//! workers read (`test_ring_tcp_cluster`). Everything else reaches the
//! nodes through their engines (nodes.rs, connection.rs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The variable that names the shared folder: the same path on every node
/// (an NFS mount, say). `cargo xtask swarm-lab up` sets it for its nodes.
pub const SHARED_VAR: &str = "DIST_TEST_SWARM_SHARED";

/// The shared folder from [`SHARED_VAR`] (`value`), or `default` on a swarm
/// of one node, which shares nothing; one line when a bigger swarm has none.
pub fn root(value: Option<&str>, nodes: usize, default: &Path) -> Result<PathBuf> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => {
            let path = PathBuf::from(v);
            if !path.is_absolute() || !path.is_dir() {
                bail!(
                    "{SHARED_VAR}={v} is not a folder: name the folder that every node of the \
                     swarm has at the same path (see docs/swarm.md)"
                );
            }
            Ok(path)
        }
        None if nodes <= 1 => Ok(default.to_path_buf()),
        None => bail!(
            "--swarm: LiberTEM's dist tests need one folder at the same path on all {nodes} \
             nodes (the detector data and their scratch folder): set {SHARED_VAR} to it, \
             e.g. an NFS mount (see docs/swarm.md)"
        ),
    }
}

/// Where a stack's services find the data and the scratch folder in the
/// shared `root`: the checkout's own data (under `target`) is copied to
/// `<root>/<checkout>/data`; data elsewhere (`TESTDATA_BASE_PATH`) is used
/// where it is, which must then be the same path on every node. The
/// scratch folder is the stack's own, `<root>/<stack>/temp_data`.
pub fn layout(
    root: &Path,
    (checkout, stack): (&str, &str),
    data: &Path,
    target: &Path,
) -> (PathBuf, PathBuf) {
    let data = if data.starts_with(target) {
        root.join(checkout).join("data")
    } else {
        data.to_path_buf()
    };
    (data, root.join(stack).join("temp_data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swarm_of_several_nodes_needs_the_shared_folder() {
        let here = std::env::temp_dir();
        let d = Path::new("/t/shared");
        assert_eq!(root(None, 1, d).unwrap(), d);
        assert_eq!(root(Some(""), 1, d).unwrap(), d);
        let e = root(None, 3, d).unwrap_err().to_string();
        assert!(e.contains("all 3 nodes") && e.contains(SHARED_VAR), "{e}");
        let e = root(Some("relative/x"), 3, d).unwrap_err().to_string();
        assert!(e.contains("is not a folder"), "{e}");
        let value = here.to_string_lossy();
        assert_eq!(root(Some(&value), 3, d).unwrap(), here);
    }

    #[test]
    fn the_checkouts_data_is_copied_and_the_users_is_not() {
        let (root, target) = (Path::new("/nfs"), Path::new("/repo/target/dist-test"));
        let ids = ("ltdist-repo-ab", "ltdist-repo-ab-7");
        assert_eq!(
            layout(root, ids, &target.join("testdata/set-1"), target),
            (
                PathBuf::from("/nfs/ltdist-repo-ab/data"),
                PathBuf::from("/nfs/ltdist-repo-ab-7/temp_data")
            )
        );
        assert_eq!(
            layout(root, ids, Path::new("/nfs/detector"), target).0,
            PathBuf::from("/nfs/detector")
        );
    }
}
