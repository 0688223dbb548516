//! What the commands of one checkout share, each piece with one owner:
//!
//! | state | owner | guarded by |
//! | --- | --- | --- |
//! | build context `target/dist-test/context/`, image tags, the deps and project images | image/ | the checkout lock |
//! | runtime (`/venv`) and numba volumes | runtime.rs, numba.rs | the checkout lock |
//! | requirements under `target/dist-test/reqs/`, the sdist, downloads | reqs.rs, project.rs, downloads/ | the checkout lock |
//! | generated test data | testdata.rs | the checkout lock |
//! | remembered selections `selection.json` | selection.rs | the checkout lock |
//! | run folders, `last`, runs in progress `live/` | [`runs`] | one file per run; `last` replaced in one step |
//! | the kept cluster and `cluster/state.json` | `cluster::state` | the kept cluster's lock |
//!
//! The checkout lock is held while those change (a build, volumes made or
//! removed, a selection remembered), not while a cluster runs: two runs of
//! one checkout build one after the other and then test side by side, each
//! on the image and volumes it registered. The kept cluster's lock is held
//! by `up`, `test` and `down` for as long as they run. Order: the kept
//! cluster's lock first, then the checkout's.

pub mod lock;
pub mod runs;

use anyhow::Result;

use crate::docker::{label_filter, Docker};
use crate::labels::HELPER_LABEL;
use crate::ui::Ui;
use crate::workspace::Workspace;
use lock::{Holder, Lock, Named};

fn checkout_lock(ws: &Workspace) -> Named<'static> {
    Named {
        path: ws.target.join("checkout.lock"),
        what: "this checkout's lock",
    }
}

fn kept_lock(ws: &Workspace) -> Named<'static> {
    Named {
        path: ws.target.join("cluster.lock"),
        what: "the kept cluster's lock",
    }
}

/// Take the checkout lock for `doing`. After a holder that was killed, the
/// helper containers it left running are stopped first, so that nothing it
/// started can write into what this command is about to use. `wait`: for
/// another holder to finish (else fail at once, naming it).
pub fn lock(ws: &Workspace, docker: &Docker, doing: &str, wait: bool) -> Result<Lock> {
    let lock = checkout_lock(ws).acquire(&Holder::me(doing), wait, docker.ui())?;
    if lock.took_over.is_some() {
        stop_helpers(ws, docker)?;
    }
    Ok(lock)
}

/// The checkout lock for a command that runs no container (`update-reqs`).
pub fn lock_files(ws: &Workspace, doing: &str, wait: bool, ui: Ui) -> Result<Lock> {
    checkout_lock(ws).acquire(&Holder::me(doing), wait, ui)
}

/// Take the kept cluster's lock for `doing`.
pub fn lock_kept(ws: &Workspace, doing: &str, wait: bool, ui: Ui) -> Result<Lock> {
    kept_lock(ws).acquire(&Holder::me(doing), wait, ui)
}

/// Stop the checkout's helper containers: only ever called with the
/// checkout lock held, when no live command of the checkout runs one.
fn stop_helpers(ws: &Workspace, docker: &Docker) -> Result<()> {
    let filter = label_filter(HELPER_LABEL, &ws.checkout_id);
    let left: Vec<String> = docker
        .containers(&[filter])?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if !left.is_empty() {
        docker.ui().say(&format!(
            "stopping {} helper container(s) the dead holder left running",
            left.len()
        ));
        docker.rm_force(&left);
    }
    Ok(())
}

/// `--label` values for a helper container of this checkout.
pub fn helper_labels(ws: &Workspace) -> Vec<String> {
    vec![format!("{HELPER_LABEL}={}", ws.checkout_id)]
}
