//! What the services' fork servers import before they fork a Dask worker
//! or an ipyparallel engine (packaging/docker/warm_start.py): the modules
//! other than the project's that the project's worker side loads, so that a
//! worker or engine started after an edit imports only the project. Found
//! by `warm_start.py discover` in a container of an image that runs on the
//! runtime, once per runtime (the modules are the runtime's; every project
//! on it, a copy of the release or an edited checkout, loads nearly the same
//! ones), and kept under `target/dist-test/preload/<runtime>.txt`; the
//! services get it as `DIST_TEST_PRELOAD`. It only saves time: when it
//! cannot be found the services start without it, and say nothing
//! different.

use std::fs;
use std::path::PathBuf;

use crate::checkout;
use crate::docker::{Docker, OneShot, QUERY_LONG};
use crate::fsx;
use crate::workspace::Workspace;

/// The modules whose imports are measured: LiberTEM's own list of what a
/// worker loads slowly (its workers preload it), what its executor loads,
/// and what a first task loads.
const FROM: &[&str] = &["libertem.preload", "libertem.executor.dask", "libertem.api"];

fn path(ws: &Workspace, runtime: &str) -> PathBuf {
    ws.target.join("preload").join(format!("{runtime}.txt"))
}

/// The module names, one per line in the file.
pub fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The preload of the runtime volume `runtime`: kept, or found now in a
/// container of `image_id`, which runs on it.
pub fn of(docker: &Docker, ws: &Workspace, image_id: &str, runtime: &str) -> Vec<String> {
    let file = path(ws, runtime);
    if let Ok(text) = fs::read_to_string(&file) {
        return parse(&text);
    }
    crate::live::status("finding the modules the workers preload", None);
    let mut command = vec!["python3", "/opt/dist-test/warm_start.py", "discover"];
    command.extend(FROM);
    let one = OneShot {
        image: image_id,
        user: "libertem",
        volumes: vec![format!("{runtime}:/venv:ro")],
        env: vec!["NUMBA_CACHE_DIR=/tmp/numba".into()],
        labels: checkout::helper_labels(ws),
        command: command.into_iter().map(String::from).collect(),
        ..Default::default()
    };
    let found = docker.one_shot(&one, None, QUERY_LONG).and_then(|out| {
        fsx::write_atomic(&file, out.as_bytes())?;
        Ok(parse(&out))
    });
    match found {
        Ok(names) => names,
        Err(e) => {
            docker.ui().say(&format!(
                "warning: the workers start without a preload ({e:#}); they import everything on their first task"
            ));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_module_per_line() {
        assert_eq!(
            parse("numpy\n\n  dask.distributed \n# note\nscipy.sparse._sputils\n"),
            ["numpy", "dask.distributed", "scipy.sparse._sputils"]
        );
    }
}
