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

/// The shared folder from [`SHARED_VAR`] (`value`); none on a swarm of one
/// node without it (nothing to share: the data is used where it is); one
/// line when a bigger swarm has none or it is not a folder.
pub fn root(value: Option<&str>, nodes: usize) -> Result<Option<PathBuf>> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => {
            let path = PathBuf::from(v);
            if !path.is_absolute() {
                bail!("{SHARED_VAR}={v} must be an absolute path, the same on every node");
            }
            if !path.is_dir() {
                bail!(
                    "{SHARED_VAR}={v} is not a folder: name the folder that every node of the \
                     swarm has at the same path (see docs/swarm.md)"
                );
            }
            Ok(Some(path))
        }
        None if nodes <= 1 => Ok(None),
        None => bail!(
            "--swarm: LiberTEM's dist tests need one folder at the same path on all {nodes} \
             nodes (the detector data and their scratch folder): set {SHARED_VAR} to it, \
             e.g. an NFS mount (see docs/swarm.md)"
        ),
    }
}

/// The stack's own folder in the shared one, removed with the stack.
pub fn stack_dir(root: &Path, stack: &str) -> PathBuf {
    root.join("stacks").join(stack)
}

/// The file a stack writes into its folder, which every node must see.
pub const MARK: &str = ".dist-test-shared";

/// Where a stack's services find the data and the scratch folder. In the
/// shared `root`: the checkout's own data set (under `target`) is copied to
/// `<root>/<checkout>/data/<its folder's name>`, one copy per set; data
/// elsewhere (`TESTDATA_BASE_PATH`) is used where it is, which must then be
/// the same path on every node; the scratch folder is the stack's own,
/// `<root>/stacks/<stack>/temp_data`. Without a shared folder (one node):
/// the data where it is, the scratch folder in `beside`.
pub fn layout(
    root: Option<&Path>,
    (checkout, stack): (&str, &str),
    (data, target): (&Path, &Path),
    beside: &Path,
) -> (PathBuf, PathBuf) {
    let Some(root) = root else {
        return (data.to_path_buf(), beside.join("temp_data"));
    };
    let data = match data.file_name() {
        Some(set) if data.starts_with(target) => root.join(checkout).join("data").join(set),
        _ => data.to_path_buf(),
    };
    (data, stack_dir(root, stack).join("temp_data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swarm_of_several_nodes_needs_the_shared_folder() {
        let here = std::env::temp_dir();
        assert_eq!(root(None, 1).unwrap(), None);
        assert_eq!(root(Some(""), 1).unwrap(), None);
        let e = root(None, 3).unwrap_err().to_string();
        assert!(e.contains("all 3 nodes") && e.contains(SHARED_VAR), "{e}");
        let e = root(Some("relative/x"), 3).unwrap_err().to_string();
        assert!(e.contains("must be an absolute path"), "{e}");
        let e = root(Some("/no/such/folder"), 3).unwrap_err().to_string();
        assert!(e.contains("is not a folder"), "{e}");
        let value = here.to_string_lossy();
        assert_eq!(root(Some(&value), 3).unwrap(), Some(here.clone()));
    }

    #[test]
    fn each_data_set_has_its_copy_and_no_stack_folder_holds_one() {
        let (root, target) = (Path::new("/nfs"), Path::new("/repo/target/dist-test"));
        let ids = ("ltdist-repo-ab", "ltdist-repo-ab");
        let beside = Path::new("/repo/target/dist-test/cluster");
        let set = target.join("testdata/808b");
        assert_eq!(
            layout(Some(root), ids, (&set, target), beside),
            (
                PathBuf::from("/nfs/ltdist-repo-ab/data/808b"),
                PathBuf::from("/nfs/stacks/ltdist-repo-ab/temp_data")
            )
        );
        let none = target.join("no-test-data");
        let (empty, _) = layout(Some(root), ids, (&none, target), beside);
        assert_eq!(
            empty,
            PathBuf::from("/nfs/ltdist-repo-ab/data/no-test-data")
        );
        let users = Path::new("/nfs/detector");
        assert_eq!(layout(Some(root), ids, (users, target), beside).0, users);
        // One node, nothing shared: the data where it is.
        assert_eq!(
            layout(None, ids, (&set, target), beside),
            (set.clone(), beside.join("temp_data"))
        );
    }
}
