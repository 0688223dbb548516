//! What `clean` removes and what it keeps, decided from the footprint and
//! what is busy (pure: `--dry-run` prints exactly this plan, and `clean`
//! carries it out). A checkout's own objects go unless a cluster or run in
//! progress uses them; a shared one goes only when nothing that stays needs
//! it: a runtime or base once no remaining image runs on it, uv's cache
//! once no other checkout is left.

use super::{Footprint, Item, Kind, Owner};

/// Whose objects to remove: one checkout's, or every checkout's.
pub struct Scope<'a> {
    pub me: &'a str,
    pub all: bool,
    /// The shared runtimes this checkout used (its record of them): the
    /// only ones a `clean` of this checkout alone may remove, so that it
    /// never takes a runtime another checkout has just made for a build
    /// still under way.
    pub used: &'a [String],
    /// Checkouts whose folder is gone ([`super::Footprint::orphans`]):
    /// always in scope, and nothing of theirs is busy, since nothing can
    /// use it any more.
    pub orphans: &'a [String],
}

impl Scope<'_> {
    fn covers(&self, owner: &Owner) -> bool {
        match owner {
            Owner::Checkout(c) => self.all || c == self.me || self.orphaned(c),
            Owner::Shared => false,
        }
    }

    pub fn orphaned(&self, checkout: &str) -> bool {
        self.orphans.iter().any(|o| o == checkout)
    }
}

/// A cluster of the harness's on the engine (a compose project or stack).
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    /// Which backend runs it: `clean` takes it down through that one.
    pub backend: crate::cluster::spec::Kind,
    pub checkout: String,
    /// Why it must stay (a service runs, a run in progress or `up` owns
    /// it), or `None`.
    pub busy: Option<String>,
}

/// What clusters and runs in progress use, each with why.
#[derive(Debug, Default)]
pub struct Busy {
    /// Image ids.
    pub images: Vec<(String, String)>,
    pub volumes: Vec<(String, String)>,
}

impl Busy {
    fn why(list: &[(String, String)], key: &str) -> Option<String> {
        list.iter().find(|(k, _)| k == key).map(|(_, w)| w.clone())
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Clusters to take down (containers, networks and their volumes).
    pub clusters: Vec<Cluster>,
    pub remove: Vec<Item>,
    /// What stays, and why.
    pub kept: Vec<(String, String)>,
}

impl Plan {
    pub fn size(&self) -> u64 {
        self.remove.iter().map(|i| i.size).sum()
    }
}

/// Decide what `clean` in `scope` removes.
pub fn plan(fp: &Footprint, clusters: &[Cluster], busy: &Busy, scope: &Scope) -> Plan {
    let mut p = Plan::default();
    for c in clusters {
        if !scope.covers(&Owner::Checkout(c.checkout.clone())) {
            continue;
        }
        match &c.busy {
            Some(why) if !scope.orphaned(&c.checkout) => {
                p.kept.push((format!("cluster {}", c.name), why.clone()))
            }
            _ => p.clusters.push(c.clone()),
        }
    }
    for it in fp.items.iter().filter(|i| scope.covers(&i.owner)) {
        let orphaned = matches!(&it.owner, Owner::Checkout(c) if scope.orphaned(c));
        let why = match it.kind {
            _ if orphaned => None,
            Kind::Image => Busy::why(&busy.images, &it.id),
            Kind::Volume => Busy::why(&busy.volumes, &it.name),
            Kind::BuildCache => it.in_use.then(|| "in use by a build".to_string()),
        };
        match why {
            Some(why) => p.kept.push((describe(it), why)),
            None => p.remove.push(it.clone()),
        }
    }
    let staying: Vec<&Item> = fp
        .items
        .iter()
        .filter(|i| !matches!(i.owner, Owner::Shared) && !p.remove.contains(i))
        .collect();
    for it in fp.items.iter().filter(|i| i.owner == Owner::Shared) {
        match shared_kept(it, &staying, busy, scope) {
            Some(why) => p.kept.push((describe(it), why)),
            None => p.remove.push(it.clone()),
        }
    }
    p
}

/// Why a shared object stays, if it does.
fn shared_kept(it: &Item, staying: &[&Item], busy: &Busy, scope: &Scope) -> Option<String> {
    let all = scope.all;
    if it.containers > 0 {
        return Some(format!("{} container(s) use it", it.containers));
    }
    let images: Vec<&&Item> = staying.iter().filter(|i| i.kind == Kind::Image).collect();
    let user = |needed: &dyn Fn(&Item) -> bool| {
        images
            .iter()
            .find(|i| needed(i))
            .map(|i| format!("{}'s image {} runs on it", i.owner.name(), i.name))
    };
    match it.what {
        "runtime" => Busy::why(&busy.volumes, &it.name)
            .or_else(|| user(&|i: &Item| i.needs.contains(&it.name)))
            .or_else(|| {
                (!all && !scope.used.contains(&it.name))
                    .then(|| "this checkout did not use it (`clean --all` removes it)".to_string())
            }),
        // An image made before images named their base needs every base.
        "base image" => {
            user(&|i: &Item| i.needs.contains(&it.name) || !i.needs.iter().any(|n| n.contains(':')))
        }
        // uv's cache, for the runtimes other checkouts will make; a build
        // cache record several checkouts' records are built on.
        _ => Busy::why(&busy.volumes, &it.name).or_else(|| {
            staying
                .first()
                .filter(|_| !all)
                .map(|i| format!("{} still uses the harness", i.owner.name()))
        }),
    }
}

/// `numba cache ltdist-x-numba-…`
pub fn describe(it: &Item) -> String {
    format!("{} {}", it.what, it.name)
}
