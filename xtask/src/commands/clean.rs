//! `cargo xtask clean`: remove what the harness made on the engine for this
//! checkout (`--all`: for every checkout, and what they share), never a
//! cluster or run in progress, never anything it did not make; `--dry-run`
//! prints the same plan and removes nothing. See docs/disk.md.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::checkout::{self, runs};
use crate::cli::Clean;
use crate::cluster;
use crate::cluster::state::ClusterState;
use crate::context::{Ctx, Invocation, Needs};
use crate::docker::human;
use crate::footprint::plan::{self, Plan, Scope};
use crate::footprint::{self, busy, Footprint, Item};

impl Clean {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        // No build of this checkout makes or removes anything meanwhile.
        let _lock = checkout::lock(&cx.ws, &cx.docker, "cleaning", cx.wait)?;
        let fp = Footprint::read(&cx.docker)?;
        let roots = fp.roots(Some((&cx.ws.checkout_id, &cx.ws.root)));
        let (clusters, busy) = busy::read(&cx.docker, &roots)?;
        let used = fp.used_by(&cx.ws);
        let orphans = fp.orphans();
        let scope = Scope {
            me: &cx.ws.checkout_id,
            all: self.all,
            used: &used,
            orphans: &orphans,
        };
        let mut plan = plan::plan(&fp, &clusters, &busy, &scope);
        let files = self.files(&cx, &mut plan);
        let whose = if self.all {
            "every checkout, and what they share".to_string()
        } else {
            format!("this checkout, {}", cx.ws.checkout_id)
        };
        let whose = match orphans.len() {
            0 => whose,
            n => format!("{whose}, and {n} orphaned checkout(s) whose folder is gone"),
        };
        if self.dry_run {
            print_plan(&plan, &files, &whose, &fp, &scope);
            return Ok(());
        }
        let note = files_note(&files);
        let mut clusters_left = 0;
        for c in &plan.clusters {
            // Best effort, as for every removal here: what stays is said.
            let named = cluster::Named::new(c.name.clone(), c.backend);
            if let Err(e) = named.take_down(&cx.ws, &cx.docker, &cx.compose) {
                crate::outln!("  cluster {} is not all gone: {e:#}", c.name);
                clusters_left += 1;
            }
        }
        let failed = footprint::apply(&cx.docker, &plan);
        for f in &files {
            let _ = fs::remove_dir_all(f).or_else(|_| fs::remove_file(f));
        }
        let freed: u64 = plan
            .remove
            .iter()
            .filter(|i| !failed.contains(i))
            .map(|i| i.size)
            .sum();
        crate::outln!(
            "clean ({whose}): removed {} cluster(s), {} object(s), {} on the engine{}",
            plan.clusters.len() - clusters_left,
            plan.remove.len() - failed.len(),
            human(freed),
            note
        );
        for (what, why) in &plan.kept {
            crate::outln!("  kept {what}: {why}");
        }
        for f in &failed {
            crate::outln!(
                "  still there: {} (Docker refused to remove it; a container or another record may use it)",
                plan::describe(f)
            );
        }
        Ok(())
    }

    /// The files under `target/dist-test` that go too: the build context (a
    /// copy of the project) and the record of runtimes checked, and with
    /// `--downloads` the downloads; but not the unpacked release while a
    /// cluster of this checkout mounts it (said in `plan.kept`).
    fn files(&self, cx: &Ctx, plan: &mut Plan) -> Vec<PathBuf> {
        let t = &cx.ws.target;
        let mut files = vec![t.join("context"), t.join("runtime.json")];
        if self.downloads {
            files.push(t.join("tools"));
            let kept = ClusterState::load(&cx.ws).ok().flatten().is_some();
            let running = !runs::in_progress(&cx.ws).is_empty();
            if kept || running {
                let why = if kept {
                    "the kept cluster (`up`) mounts the release"
                } else {
                    "a run in progress mounts the release"
                };
                plan.kept
                    .push((format!("files {}", t.join("sdist").display()), why.into()));
            } else {
                files.push(t.join("sdist"));
            }
        }
        files.into_iter().filter(|f| f.exists()).collect()
    }
}

fn files_note(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let bytes: u64 = files.iter().map(|f| dir_size(f)).sum();
    format!(", and {} of files under target/dist-test", human(bytes))
}

fn print_plan(plan: &Plan, files: &[PathBuf], whose: &str, fp: &Footprint, scope: &Scope) {
    crate::outln!(
        "clean --dry-run ({whose}): would remove {} cluster(s) and {} object(s), {} of the \
         harness's {} on the engine",
        plan.clusters.len(),
        plan.remove.len(),
        human(plan.size()),
        human(fp.size(|_| true))
    );
    let orphaned = |c: &str| if scope.orphaned(c) { ", orphaned" } else { "" };
    for c in &plan.clusters {
        let state = if c.busy.is_some() {
            "running"
        } else {
            "stopped"
        };
        crate::outln!(
            "  cluster      {} ({state}, of {}{})",
            c.name,
            c.checkout,
            orphaned(&c.checkout)
        );
    }
    for it in &plan.remove {
        crate::outln!("  {}{})", line(it), orphaned(it.owner.name()));
    }
    for f in files {
        crate::outln!("  files        {} ({})", f.display(), human(dir_size(f)));
    }
    for (what, why) in &plan.kept {
        crate::outln!("  kept {what}: {why}");
    }
}

/// `numba cache   ltdist-x-numba-…   9 MB   (ltdist-x` (the caller closes it)
fn line(it: &Item) -> String {
    let owner = it.owner.name();
    format!(
        "{:<17} {:<64} {:>8}  ({owner}",
        it.what,
        it.name,
        human(it.size)
    )
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
