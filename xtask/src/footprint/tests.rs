use super::plan::{plan, Busy, Cluster, Scope};
use super::*;
use crate::docker::CacheEntry;

fn df() -> DiskUse {
    serde_json::from_str(
        r#"{"Images":[
 {"Containers":"0","ID":"sha256:a1","Repository":"ltdist-a-1","Tag":"py3.14-p1","Size":"126MB","UniqueSize":"6MB"},
 {"Containers":"0","ID":"sha256:b1","Repository":"ltdist-b-2","Tag":"py3.14-p1","Size":"126MB","UniqueSize":"7MB"},
 {"Containers":"0","ID":"sha256:ba","Repository":"libertem-dist-base","Tag":"forky-py3.14-x","Size":"120MB","UniqueSize":"0B"},
 {"Containers":"0","ID":"sha256:ff","Repository":"someone-else","Tag":"latest","Size":"50MB","UniqueSize":"50MB"},
 {"Containers":"0","ID":"sha256:d1","Repository":"built-on-ours","Tag":"1","Size":"130MB","UniqueSize":"4MB"},
 {"Containers":"0","ID":"sha256:d2","Repository":"built-on-the-base","Tag":"1","Size":"121MB","UniqueSize":"1MB"}],
"Volumes":[
 {"Labels":"org.libertem.dist-test.shared=runtime","Links":"0","Name":"libertem-dist-runtime-k1","Size":"900MB"},
 {"Labels":"org.libertem.dist-test.shared=runtime","Links":"0","Name":"libertem-dist-runtime-k0","Size":"880MB"},
 {"Labels":"org.libertem.dist-test.shared=uv-cache","Links":"0","Name":"libertem-dist-uv-cache","Size":"850MB"},
 {"Labels":"org.libertem.dist-test.numba-cache=ltdist-a-1","Links":"0","Name":"ltdist-a-1-numba-x","Size":"9MB"},
 {"Labels":"org.libertem.dist-test.numba-cache=ltdist-b-2","Links":"1","Name":"ltdist-b-2-numba-y","Size":"9MB"},
 {"Labels":"","Links":"0","Name":"not-ours","Size":"1GB"}],
"BuildCache":[
 {"CacheType":"regular","Description":"from local","ID":"base0","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.000 +0000 UTC","Parent":"","Size":"0B"},
 {"CacheType":"regular","Description":"mount / from exec /bin/sh -c useradd x # build cache of ltdist-a-1 (filled in)","ID":"run-a","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.370 +0000 UTC","Parent":"base0","Size":"9kB"},
 {"CacheType":"regular","Description":"fileop target","ID":"copy-a","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.372 +0000 UTC","Parent":"run-a","Size":"6MB"},
 {"CacheType":"source.local","Description":"local source for context","ID":"ctx-a","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.371 +0000 UTC","Parent":"","Size":"6MB"},
 {"CacheType":"source.local","Description":"local source for context","ID":"ctx-other","InUse":"false","LastUsedAt":"2026-12-04 22:00:00.000 +0000 UTC","Parent":"","Size":"3MB"},
 {"CacheType":"regular","Description":"mount / from exec /bin/sh -c make","ID":"other","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.371 +0000 UTC","Parent":"base0","Size":"1MB"}]}"#,
    )
    .unwrap()
}

fn labels() -> BTreeMap<String, BTreeMap<String, String>> {
    let l = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let base = "libertem-dist-base:forky-py3.14-x";
    BTreeMap::from([
        (
            "sha256:a1".into(),
            l(&[
                (CHECKOUT_LABEL, "ltdist-a-1"),
                (IMAGE_RUNTIME_LABEL, "libertem-dist-runtime-k1"),
                (BASE_LABEL, base),
                (ROOT_LABEL, "/work/a"),
            ]),
        ),
        (
            "sha256:b1".into(),
            l(&[
                (CHECKOUT_LABEL, "ltdist-b-2"),
                (IMAGE_RUNTIME_LABEL, "libertem-dist-runtime-k1"),
                (BASE_LABEL, base),
            ]),
        ),
        ("sha256:ba".into(), l(&[(BASE_SUITE_LABEL, "forky")])),
        // Built FROM a project image and FROM the base: their labels, not ours.
        (
            "sha256:d1".into(),
            l(&[
                (CHECKOUT_LABEL, "ltdist-a-1"),
                (IMAGE_RUNTIME_LABEL, "libertem-dist-runtime-k1"),
            ]),
        ),
        ("sha256:d2".into(), l(&[(BASE_SUITE_LABEL, "forky")])),
        ("sha256:ff".into(), l(&[("maintainer", "x")])),
    ])
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.name.as_str()).collect()
}

#[test]
fn only_what_the_harness_made_is_counted_each_with_its_owner() {
    let fp = classify(&df(), &labels());
    let all = names(&fp.items);
    for theirs in [
        "someone-else:latest",
        "not-ours",
        "built-on-ours:1",
        "built-on-the-base:1",
    ] {
        assert!(!all.contains(&theirs), "{theirs} counted as the harness's");
    }
    assert!(!all.contains(&"base0") && !all.contains(&"other") && !all.contains(&"ctx-other"));
    // The base's record: only a's records are built on it... and "other",
    // which is not the harness's: so it is nobody's.
    assert!(!all.contains(&"base0"));
    let a = Owner::Checkout("ltdist-a-1".into());
    let of_a: Vec<&str> = fp
        .items
        .iter()
        .filter(|i| i.owner == a)
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(
        of_a,
        [
            "ltdist-a-1:py3.14-p1",
            "ltdist-a-1-numba-x",
            "run-a",
            "copy-a",
            "ctx-a"
        ]
    );
    assert_eq!(fp.checkouts(), ["ltdist-a-1", "ltdist-b-2"]);
    assert_eq!(fp.roots["ltdist-a-1"], PathBuf::from("/work/a"));
    // 6 + 7 + 120 + 900 + 880 + 850 + 9 + 9 MB, and 9 kB + 12 MB of cache.
    assert_eq!(fp.size(|_| true), 2_781_000_000 + 9_000 + 12_000_000);
}

#[test]
fn clean_of_one_checkout_keeps_what_another_uses() {
    let fp = classify(&df(), &labels());
    let clusters = vec![
        Cluster {
            name: "ltdist-a-1".into(),
            backend: crate::cluster::spec::Kind::Compose,
            checkout: "ltdist-a-1".into(),
            busy: Some("up".into()),
        },
        Cluster {
            name: "ltdist-a-1-r1".into(),
            backend: crate::cluster::spec::Kind::Compose,
            checkout: "ltdist-a-1".into(),
            busy: None,
        },
        Cluster {
            name: "ltdist-b-2".into(),
            backend: crate::cluster::spec::Kind::Compose,
            checkout: "ltdist-b-2".into(),
            busy: None,
        },
    ];
    let p = plan(
        &fp,
        &clusters,
        &Busy::default(),
        &Scope {
            me: "ltdist-a-1",
            all: false,
            used: &["libertem-dist-runtime-k0".to_string()],
            orphans: &[],
        },
    );
    assert_eq!(
        names(
            &p.clusters
                .iter()
                .map(|c| item(Kind::Volume, &c.name, Owner::Shared, 0, ""))
                .collect::<Vec<_>>()
        ),
        ["ltdist-a-1-r1"]
    );
    // The runtime nobody runs on goes; b's image still runs on k1 and the
    // base, and b still uses the uv cache.
    assert_eq!(
        names(&p.remove),
        [
            "ltdist-a-1:py3.14-p1",
            "ltdist-a-1-numba-x",
            "run-a",
            "copy-a",
            "ctx-a",
            "libertem-dist-runtime-k0"
        ]
    );
    let kept: Vec<&str> = p.kept.iter().map(|(w, _)| w.as_str()).collect();
    assert!(kept.contains(&"cluster ltdist-a-1"), "{kept:?}");
    assert!(
        kept.contains(&"runtime libertem-dist-runtime-k1"),
        "{kept:?}"
    );
    assert!(
        kept.contains(&"base image libertem-dist-base:forky-py3.14-x"),
        "{kept:?}"
    );
}

#[test]
fn clean_all_removes_everything_of_the_harness_but_what_is_busy() {
    let fp = classify(&df(), &labels());
    let busy = Busy {
        images: vec![],
        volumes: vec![(
            "ltdist-b-2-numba-y".into(),
            "cluster ltdist-b-2 runs it".into(),
        )],
    };
    let p = plan(
        &fp,
        &[],
        &busy,
        &Scope {
            me: "ltdist-a-1",
            all: true,
            used: &[],
            orphans: &[],
        },
    );
    let gone = names(&p.remove);
    for n in [
        "ltdist-b-2:py3.14-p1",
        "libertem-dist-runtime-k1",
        "libertem-dist-uv-cache",
        "libertem-dist-base:forky-py3.14-x",
    ] {
        assert!(gone.contains(&n), "{n} in {gone:?}");
    }
    assert!(!gone.contains(&"ltdist-b-2-numba-y"));
    assert_eq!(p.kept.len(), 1);
}

#[test]
fn the_build_cache_is_trimmed_oldest_first_never_a_record_under_another() {
    let fp = classify(&df(), &labels());
    let records: Vec<Item> = fp
        .items
        .into_iter()
        .filter(|i| i.kind == Kind::BuildCache)
        .collect();
    // 9 kB + 6 MB + 6 MB; a bound of 7 MB: the oldest record is run-a,
    // but the COPY is built on it: the context goes (the oldest leaf).
    let gone = cache::over_bound(&records, 7_000_000);
    assert_eq!(names(&gone), ["ctx-a"]);
    let gone = cache::over_bound(&records, 1_000);
    assert_eq!(names(&gone), ["ctx-a", "copy-a", "run-a"]);
    assert!(cache::over_bound(&records, 100_000_000).is_empty());
    let ordered = cache::children_first(&records);
    let at = |n: &str| ordered.iter().position(|r| r.name == n).unwrap();
    assert!(at("copy-a") < at("run-a"));
    let _: Option<CacheEntry> = None;
}

#[test]
fn the_bases_record_is_the_harnesss_when_only_its_records_build_on_it() {
    let rec = |id: &str, parent: &str, desc: &str| CacheEntry {
        id: id.into(),
        cache_type: "regular".into(),
        description: desc.into(),
        parent: parent.into(),
        in_use: false,
        last_used_at: "2026-12-04 21:27:26.000 +0000 UTC".into(),
        size: 1,
    };
    let one = vec![
        rec("base0", "", "from local "),
        rec("run-a", "base0", "exec x # build cache of ltdist-a-1"),
    ];
    let items = cache::attribute(&one);
    assert!(items
        .iter()
        .any(|i| i.name == "base0" && i.owner == Owner::Checkout("ltdist-a-1".into())));
    let mut two = one.clone();
    two.push(rec("run-b", "base0", "exec x # build cache of ltdist-b-2"));
    let items = cache::attribute(&two);
    assert!(items
        .iter()
        .any(|i| i.name == "base0" && i.owner == Owner::Shared));
    let fp = Footprint {
        items,
        ..Footprint::default()
    };
    let p = plan(
        &fp,
        &[],
        &Busy::default(),
        &Scope {
            me: "ltdist-a-1",
            all: true,
            used: &[],
            orphans: &[],
        },
    );
    let order = cache::children_first(&p.remove);
    assert_eq!(
        order.last().unwrap().name,
        "base0",
        "removed after the records on it"
    );
}

#[test]
fn clean_of_one_checkout_leaves_a_runtime_it_never_used() {
    let fp = classify(&df(), &labels());
    let scope = Scope {
        me: "ltdist-a-1",
        all: false,
        used: &[],
        orphans: &[],
    };
    let p = plan(&fp, &[], &Busy::default(), &scope);
    assert!(!names(&p.remove).contains(&"libertem-dist-runtime-k0"));
    assert!(p
        .kept
        .iter()
        .any(|(w, why)| w == "runtime libertem-dist-runtime-k0" && why.contains("did not use")));
}

#[test]
fn what_a_deleted_checkout_left_goes_with_any_checkouts_clean() {
    let mut df = df();
    let gone = "org.libertem.dist-test.numba-cache=ltdist-c-3,org.libertem.dist-test.root=/nonexistent/xtask-tests/c";
    let here = format!(
        "org.libertem.dist-test.numba-cache=ltdist-d-4,org.libertem.dist-test.root={}",
        env!("CARGO_MANIFEST_DIR")
    );
    let extra: DiskUse = serde_json::from_str(&format!(
        r#"{{"Images":[],"BuildCache":[],"Volumes":[
 {{"Labels":"{gone}","Links":"1","Name":"ltdist-c-3-numba-z","Size":"5MB"}},
 {{"Labels":"{here}","Links":"0","Name":"ltdist-d-4-numba-w","Size":"5MB"}}]}}"#
    ))
    .unwrap();
    df.volumes.extend(extra.volumes);
    let fp = classify(&df, &labels());
    // a's folder (/work/a) does not exist here either: only folders that
    // are named count, and d's does exist.
    assert_eq!(fp.orphans(), ["ltdist-a-1", "ltdist-c-3"]);
    let orphans = vec!["ltdist-c-3".to_string()];
    let clusters = vec![Cluster {
        name: "ltdist-c-3".into(),
        backend: crate::cluster::spec::Kind::Compose,
        checkout: "ltdist-c-3".into(),
        busy: Some("its service 0123 is running".into()),
    }];
    let busy = Busy {
        images: vec![],
        volumes: vec![(
            "ltdist-c-3-numba-z".into(),
            "cluster ltdist-c-3 runs it".into(),
        )],
    };
    let scope = Scope {
        me: "ltdist-b-2",
        all: false,
        used: &[],
        orphans: &orphans,
    };
    let p = plan(&fp, &clusters, &busy, &scope);
    assert_eq!(
        p.clusters.len(),
        1,
        "an orphan's cluster goes, running or not"
    );
    let gone = names(&p.remove);
    assert!(gone.contains(&"ltdist-c-3-numba-z"), "{gone:?}");
    assert!(!gone.contains(&"ltdist-d-4-numba-w"), "{gone:?}");
    assert!(
        !gone.contains(&"ltdist-a-1-numba-x"),
        "not named an orphan here: {gone:?}"
    );
}
