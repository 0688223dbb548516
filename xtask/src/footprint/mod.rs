//! What the harness holds on the engine, by owner: each checkout's project
//! images, numba caches, clusters and build cache, and what checkouts share
//! (base images, runtime volumes, uv's download cache). Nothing is counted
//! that the harness did not make: every object is found by a label it put
//! on it (build cache records, which carry no label, by the owner's name
//! that the Dockerfile's first `RUN` carries, see [`cache`]). `clean` and
//! `doctor` read it; [`plan`] decides what `clean` removes.

pub mod busy;
pub mod cache;
pub mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::docker::{parse_labels, DiskUse, Docker};
use crate::labels::{
    BASE_LABEL, BASE_SUITE_LABEL, CHECKOUT_LABEL, HOST_LABEL, IMAGE_RUNTIME_LABEL,
    NUMBA_CACHE_LABEL, ROOT_LABEL, RUNTIME_LABEL, SHARED_LABEL,
};

/// The repository of the base images built from Debian's packages.
pub const BASE_REPO: &str = "libertem-dist-base";

/// Who an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Checkout(String),
    Shared,
}

impl Owner {
    /// The checkout's id, or `shared`.
    pub fn name(&self) -> &str {
        match self {
            Owner::Checkout(c) => c,
            Owner::Shared => "shared",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Image,
    Volume,
    BuildCache,
}

/// One object of the harness's on the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: Kind,
    /// What removes it: an image's reference (its id when untagged), a
    /// volume's name, a build cache record's id.
    pub name: String,
    /// An image's id (shared by its tags); else the name.
    pub id: String,
    pub owner: Owner,
    /// What removing it frees (an image's own layers, counted on one tag).
    pub size: u64,
    /// `project image`, `numba cache`, `runtime`, …
    pub what: &'static str,
    /// The shared objects it runs with (an image's runtime volume and base).
    pub needs: Vec<String>,
    /// How many containers use it.
    pub containers: u64,
    /// A build cache record Docker says is in use.
    pub in_use: bool,
    /// A build cache record's parent (removed after its children).
    pub parent: String,
    /// When a build cache record was last used (seconds since 1970).
    pub last_used: f64,
}

/// Everything of the harness's, and the folder of each checkout that still
/// has an image or a volume (where its runs in progress are registered).
#[derive(Debug, Default)]
pub struct Footprint {
    pub items: Vec<Item>,
    pub roots: BTreeMap<String, PathBuf>,
    /// The machine each root is on, where its objects say.
    pub hosts: BTreeMap<String, String>,
}

impl Footprint {
    /// Read it from the engine: one `system df`, one `image inspect`.
    pub fn read(docker: &Docker) -> Result<Footprint> {
        let df = docker.disk_use()?;
        let ids: Vec<String> = df.images.iter().map(|i| i.id.clone()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        let labels = docker.images_labels(&unique);
        // An image whose labels could not be read while it is still there
        // might need a shared runtime or base: no plan without it.
        if let Some(id) = unique
            .iter()
            .find(|id| !labels.contains_key(*id) && docker.image_exists(id))
        {
            anyhow::bail!(
                "could not read the labels of image {id}: run the command again (the engine's images changed meanwhile?)"
            );
        }
        Ok(classify(&df, &labels))
    }

    /// The total size of the items `pick` selects.
    pub fn size(&self, pick: impl Fn(&Item) -> bool) -> u64 {
        self.items.iter().filter(|i| pick(i)).map(|i| i.size).sum()
    }

    /// The folders where checkouts register their runs: those the images
    /// name that still exist, and `me`'s (id, root) when given.
    pub fn roots(&self, me: Option<(&str, &Path)>) -> Vec<(String, PathBuf)> {
        let mut roots: Vec<(String, PathBuf)> = self
            .roots
            .iter()
            .filter(|(c, p)| me.is_none_or(|(id, _)| id != c.as_str()) && p.is_dir())
            .map(|(c, p)| (c.clone(), p.clone()))
            .collect();
        if let Some((id, root)) = me {
            roots.push((id.to_string(), root.to_path_buf()));
        }
        roots
    }

    /// The checkouts whose folder no longer exists: nothing can use what
    /// they left (their commands are gone with them), so `clean` in any
    /// checkout removes it. A checkout whose folder nothing names is not
    /// one of them.
    pub fn orphans(&self) -> Vec<String> {
        let here = crate::workspace::this_host();
        self.roots
            .iter()
            .filter(|(c, root)| self.hosts.get(*c).is_none_or(|h| *h == here) && !root.exists())
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The shared runtimes and bases checkout `ws` used: the runtimes it
    /// recorded, and what its images run on.
    pub fn used_by(&self, ws: &crate::workspace::Workspace) -> Vec<String> {
        let me = Owner::Checkout(ws.checkout_id.clone());
        let mut used = crate::runtime::used(ws);
        used.extend(
            self.items
                .iter()
                .filter(|i| i.owner == me)
                .flat_map(|i| i.needs.iter().cloned()),
        );
        used
    }

    /// Every checkout that owns something, each once.
    pub fn checkouts(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .items
            .iter()
            .filter_map(|i| match &i.owner {
                Owner::Checkout(c) => Some(c.clone()),
                Owner::Shared => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

impl Footprint {
    /// Where checkout `c` is, as an object's labels `l` say.
    fn note_root(&mut self, c: &str, l: &BTreeMap<String, String>) {
        if let Some(root) = l.get(ROOT_LABEL) {
            self.roots.insert(c.to_string(), PathBuf::from(root));
        }
        if let Some(host) = l.get(HOST_LABEL) {
            self.hosts.insert(c.to_string(), host.clone());
        }
    }
}

fn item(kind: Kind, name: &str, owner: Owner, size: u64, what: &'static str) -> Item {
    Item {
        kind,
        name: name.to_string(),
        id: name.to_string(),
        owner,
        size,
        what,
        needs: Vec::new(),
        containers: 0,
        in_use: false,
        parent: String::new(),
        last_used: 0.0,
    }
}

/// Sort the engine's objects into the harness's, by owner (pure: the tests
/// feed it a `system df` answer).
pub fn classify(df: &DiskUse, labels: &BTreeMap<String, BTreeMap<String, String>>) -> Footprint {
    let mut fp = Footprint::default();
    let mut counted: Vec<&str> = Vec::new();
    for image in &df.images {
        let Some(l) = labels.get(&image.id) else {
            continue;
        };
        // An image built from one of ours inherits its labels: ours are
        // also under our names (a replaced project image has none left).
        let untagged = image.repository == "<none>";
        let (owner, what, size) = match (l.get(CHECKOUT_LABEL), l.get(BASE_SUITE_LABEL)) {
            (Some(c), _) if untagged || image.repository == *c => {
                let what = if untagged || image.tag.starts_with("py") {
                    "project image"
                } else {
                    "image"
                };
                (Owner::Checkout(c.clone()), what, image.unique_size)
            }
            (None, Some(_)) if image.repository == BASE_REPO => {
                (Owner::Shared, "base image", image.size)
            }
            _ => continue,
        };
        if let Owner::Checkout(c) = &owner {
            fp.note_root(c, l);
        }
        // An image with two tags is freed once.
        let size = if counted.contains(&image.id.as_str()) {
            0
        } else {
            size
        };
        counted.push(&image.id);
        let mut it = item(Kind::Image, &image.reference(), owner, size, what);
        it.id = image.id.clone();
        it.containers = image.containers;
        it.needs = [IMAGE_RUNTIME_LABEL, BASE_LABEL]
            .iter()
            .filter_map(|k| l.get(*k).cloned())
            .collect();
        fp.items.push(it);
    }
    for v in &df.volumes {
        let l = parse_labels(&v.labels);
        let (owner, what) = if let Some(kind) = l.get(SHARED_LABEL) {
            let what = if kind == "uv-cache" {
                "uv download cache"
            } else {
                "runtime"
            };
            (Owner::Shared, what)
        } else if let Some(c) = l.get(NUMBA_CACHE_LABEL) {
            fp.note_root(c, &l);
            (Owner::Checkout(c.clone()), "numba cache")
        } else if let Some(c) = l.get(RUNTIME_LABEL) {
            (Owner::Checkout(c.clone()), "old runtime")
        } else if let Some(c) = l.get(CHECKOUT_LABEL) {
            fp.note_root(c, &l);
            (Owner::Checkout(c.clone()), "cluster volume")
        } else {
            continue;
        };
        let mut it = item(Kind::Volume, &v.name, owner, v.size, what);
        it.containers = v.links;
        fp.items.push(it);
    }
    fp.items.extend(cache::attribute(&df.build_cache));
    fp
}

/// The volumes running clusters mount, and those that checkouts' runs in
/// progress and kept clusters registered (found by the folders their
/// images name): what is in use, for `clean` and a build's cleanup alike;
/// `None` when that cannot be read.
pub fn volumes_in_use(docker: &Docker) -> Option<Vec<String>> {
    let fp = Footprint::read(docker).ok()?;
    let (_, busy) = busy::read(docker, &fp.roots(None)).ok()?;
    Some(busy.volumes.into_iter().map(|(v, _)| v).collect())
}

/// Remove the image `it` names, and the other tags of its repository on
/// the same image: `docker system df` lists an image with several tags once
/// (a project copy with the release's build files shares its image), and
/// the image goes only with its last tag. Whether it went.
fn remove_image(docker: &Docker, it: &Item) -> bool {
    let repo = it
        .name
        .rsplit_once(':')
        .map_or(it.name.as_str(), |(r, _)| r);
    let ours = format!("{repo}:");
    let siblings: Vec<String> = docker
        .image_tags(&it.id)
        .into_iter()
        .filter(|t| *t != it.name && t.starts_with(&ours))
        .collect();
    // Each one tried, whatever the others did.
    let stayed = siblings.iter().filter(|t| !docker.image_rm(t)).count();
    (docker.image_rm(&it.name) || !docker.image_exists(&it.name)) && stayed == 0
}

/// Carry out `plan`'s removals once its clusters are down (the caller
/// takes them down through their backends: their containers hold images
/// and volumes): images (projects before the bases they are built on),
/// volumes, and build cache records, each before the record it is built on.
/// What is still there afterwards (Docker refused: a container uses it).
pub fn apply(docker: &Docker, plan: &plan::Plan) -> Vec<Item> {
    let mut items = plan.remove.clone();
    items.sort_by_key(|i| (i.kind, i.owner == Owner::Shared));
    let (records, others): (Vec<Item>, Vec<Item>) =
        items.into_iter().partition(|i| i.kind == Kind::BuildCache);
    let mut failed = Vec::new();
    for it in others {
        let gone = match it.kind {
            Kind::Image => remove_image(docker, &it),
            _ => docker.volume_rm(&it.name) || !docker.volume_exists(&it.name),
        };
        if !gone {
            failed.push(it);
        }
    }
    for r in cache::children_first(&records) {
        docker.cache_rm(&r.id);
    }
    if !records.is_empty() {
        let left = cache::harness_records(docker).unwrap_or_default();
        failed.extend(
            records
                .into_iter()
                .filter(|r| left.iter().any(|l| l.id == r.id)),
        );
    }
    failed
}

#[cfg(test)]
mod tests;
