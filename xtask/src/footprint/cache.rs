//! The harness's BuildKit cache: which records are whose, and the bound it
//! is kept under. A record carries no label, so the project stage's first
//! `RUN` names its owner in a comment (`# build cache of <checkout>`,
//! filled in from the Dockerfile's `@CHECKOUT@`); that text is the record's
//! description, and every record built on it (the `COPY` layers) is the
//! owner's too. The build context's records (`local source for …`) hang on
//! nothing: they are the owner's when BuildKit last used them in the same
//! instant as one of the owner's records, that is, by the same build (it
//! releases all of a build's records together, within milliseconds).
//! After each build the harness removes its own oldest records, the ones
//! nothing is built on first, until the total is under `image.build_cache_mb`.

use anyhow::Result;

use super::{Item, Kind, Owner};
use crate::docker::{human, CacheEntry, Docker};

/// What the Dockerfile says before its owner's name.
pub const MARK: &str = "build cache of ";

/// The placeholder in the committed Dockerfile that the owner's name replaces.
pub const PLACEHOLDER: &str = "@CHECKOUT@";

/// Records released this close together (seconds) came from one build.
const SAME_BUILD: f64 = 0.05;

/// The checkout a record's own description names.
fn named_owner(e: &CacheEntry) -> Option<String> {
    let at = e.description.find(MARK)? + MARK.len();
    let name: String = e.description[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The owner of a record: its own mark, or its nearest ancestor's.
fn owner_by_chain(e: &CacheEntry, all: &[CacheEntry]) -> Option<String> {
    let mut at = e;
    for _ in 0..all.len() + 1 {
        if let Some(o) = named_owner(at) {
            return Some(o);
        }
        at = all
            .iter()
            .find(|p| !at.parent.is_empty() && p.id == at.parent)?;
    }
    None
}

/// The owner of a record nothing names, when only the harness's records are
/// built on it (the base image's record under the first `RUN`): the one
/// checkout whose records they are, or shared when several build on it.
fn owner_below(
    e: &CacheEntry,
    owned: &[(&CacheEntry, String)],
    all: &[CacheEntry],
) -> Option<Owner> {
    let children: Vec<&CacheEntry> = all.iter().filter(|c| c.parent == e.id).collect();
    let owners: Vec<&String> = children
        .iter()
        .map(|c| owned.iter().find(|(x, _)| x.id == c.id).map(|(_, o)| o))
        .collect::<Option<_>>()?;
    let first = owners.first()?;
    Some(if owners.iter().all(|o| o == first) {
        Owner::Checkout((*first).clone())
    } else {
        Owner::Shared
    })
}

/// The harness's records among the engine's, each with its owner.
pub fn attribute(all: &[CacheEntry]) -> Vec<Item> {
    let owned: Vec<(&CacheEntry, String)> = all
        .iter()
        .filter_map(|e| owner_by_chain(e, all).map(|o| (e, o)))
        .collect();
    let mut items: Vec<Item> = Vec::new();
    for e in all {
        let owner = if let Some((_, o)) = owned.iter().find(|(x, _)| x.id == e.id) {
            Some(Owner::Checkout(o.clone()))
        } else if e.cache_type == "regular" {
            owner_below(e, &owned, all)
        } else if e.cache_type == "source.local" {
            let t = e.last_used();
            owned
                .iter()
                .map(|(x, o)| ((x.last_used() - t).abs(), o))
                .filter(|(dt, _)| *dt < SAME_BUILD)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, o)| Owner::Checkout(o.clone()))
        } else {
            None
        };
        if let Some(owner) = owner {
            let mut it = super::item(Kind::BuildCache, &e.id, owner, e.size, "build cache");
            it.in_use = e.in_use;
            it.parent = e.parent.clone();
            it.last_used = e.last_used();
            items.push(it);
        }
    }
    items
}

/// The records to remove, oldest first and never one that another record
/// still builds on, until what is left is at most `bound` bytes.
pub fn over_bound(records: &[Item], bound: u64) -> Vec<Item> {
    let mut left: Vec<&Item> = records
        .iter()
        .filter(|i| i.kind == Kind::BuildCache)
        .collect();
    let mut total: u64 = left.iter().map(|i| i.size).sum();
    let mut out = Vec::new();
    while total > bound {
        let leaf = left
            .iter()
            .filter(|i| !i.in_use && !left.iter().any(|c| c.parent == i.id))
            .min_by(|a, b| a.last_used.total_cmp(&b.last_used))
            .copied();
        let Some(leaf) = leaf else { break };
        total -= leaf.size;
        out.push(leaf.clone());
        left.retain(|i| i.id != leaf.id);
    }
    out
}

/// The harness's build cache records on the engine.
pub fn harness_records(docker: &Docker) -> Result<Vec<Item>> {
    Ok(attribute(&docker.disk_use()?.build_cache))
}

/// `records` ordered so that none comes before a record built on it.
pub fn children_first(records: &[Item]) -> Vec<Item> {
    let depth = |r: &Item| {
        let mut d = 0;
        let mut at = r;
        while let Some(p) = records
            .iter()
            .find(|p| !at.parent.is_empty() && p.id == at.parent)
        {
            d += 1;
            at = p;
            if d > records.len() {
                break;
            }
        }
        d
    };
    let mut out = records.to_vec();
    out.sort_by_key(|r| std::cmp::Reverse(depth(r)));
    out
}

/// Keep the harness's build cache (every checkout's) under `bound` bytes:
/// what was removed, and the total after.
pub fn trim(docker: &Docker, bound: u64) -> Result<(usize, u64)> {
    let records = harness_records(docker)?;
    let doomed = over_bound(&records, bound);
    for r in &doomed {
        docker.cache_rm(&r.id);
    }
    let (removed, total) = if doomed.is_empty() {
        (0, records.iter().map(|i| i.size).sum())
    } else {
        let left = harness_records(docker)?;
        (
            records.len() - left.len(),
            left.iter().map(|i| i.size).sum(),
        )
    };
    if removed > 0 {
        crate::live::status(
            format!(
                "build cache: removed {removed} old record(s); the harness's is {} (bound {})",
                human(total),
                human(bound)
            ),
            None,
        );
    }
    Ok((removed, total))
}
