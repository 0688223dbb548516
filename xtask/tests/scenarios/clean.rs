//! `cargo xtask clean` on a real engine: a second checkout shares the
//! runtime and costs only its project image; `clean --dry-run` lists
//! exactly what `clean` then removes; `clean` leaves another checkout's
//! kept cluster running and an image and a volume the harness did not make.
//! Each checkout is a scratch one of its own, so that the main checkout's
//! images (which the other scenarios run) stay.

use crate::common::*;

use std::collections::BTreeSet;

/// Every image reference and volume name on the engine.
fn engine_objects() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for r in docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).lines() {
        all.insert(format!("image {r}"));
    }
    for v in docker(&["volume", "ls", "--quiet"]).lines() {
        all.insert(format!("volume {v}"));
    }
    all
}

/// The images and volumes a `clean --dry-run` lists (`  <what> <name> <size> (<owner>)`).
fn listed(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ")?;
            if l.starts_with("kept ") {
                return None;
            }
            let kind = if l.contains("image ") {
                "image"
            } else if [
                "numba cache",
                "runtime",
                "uv download cache",
                "cluster volume",
            ]
            .iter()
            .any(|w| l.starts_with(w))
            {
                "volume"
            } else {
                return None;
            };
            let name = l
                .split_whitespace()
                .find(|w| w.starts_with("ltdist-") || w.starts_with("libertem-dist-"))?;
            Some(format!("{kind} {name}"))
        })
        .collect()
}

#[test]
fn clean_removes_what_it_listed_and_nothing_of_others() {
    if !engine_available() {
        return;
    }
    let a = other_checkout("clean-a");
    let b = other_checkout("clean-b");
    let pid = std::process::id();
    let foreign_volume = format!("xtask-test-foreign-{pid}");
    let foreign_image = format!("xtask-test-foreign:{pid}");
    let derived_image = format!("xtask-test-derived:{pid}");
    let _guard = CleanUpOnPanic {
        checkout: b.clone(),
        images: vec![foreign_image.clone(), derived_image.clone()],
        volumes: vec![foreign_volume.clone()],
    };
    docker(&["volume", "create", &foreign_volume]);

    // Two checkouts with the same requirements: the second adds only its
    // project image (and its share of the build cache).
    let o = xtask_in(&b, &["build"], &[]);
    assert!(o.status.success(), "build b: {}", stderr(&o));
    let before_a = engine_objects();
    let o = xtask_in(&a, &["build"], &[]);
    assert!(o.status.success(), "build a: {}", stderr(&o));
    // Other scenarios run beside this one: only what is a's, and the
    // runtime a's image runs with, are looked at.
    let a_id = checkout_id(&a);
    let added: Vec<String> = engine_objects()
        .difference(&before_a)
        .filter(|o| o.contains(&a_id))
        .cloned()
        .collect();
    assert!(
        added
            .iter()
            .all(|o| o.starts_with(&format!("image {a_id}:"))),
        "a second checkout made more than its project image: {added:?}"
    );
    assert_eq!(
        runtime_of(&release_image(&a)),
        runtime_of(&release_image(&b)),
        "two checkouts with the same requirements share one runtime"
    );
    // Images the harness did not make: b's tagged by hand, and one made
    // from a container of b's image (it inherits the harness's labels).
    docker(&["tag", &release_image(&b), &foreign_image]);
    let c = docker(&["create", &release_image(&b), "true"]);
    docker(&["commit", c.trim(), &derived_image]);
    docker(&["rm", c.trim()]);

    let config = small_config();
    let size = ["--workers", "1", "--engines", "1"];
    let mut up = vec!["--config", config.to_str().unwrap(), "up"];
    up.extend(size);
    let o = xtask_in(&b, &up, &[]);
    assert!(o.status.success(), "up b: {}", stderr(&o));
    let b_id = checkout_id(&b);
    let running_b = || {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={b_id}"),
        ])
        .lines()
        .count()
    };
    let b_services = running_b();

    let dry = xtask_in(&a, &["clean", "--dry-run"], &[]);
    assert!(dry.status.success(), "clean --dry-run: {}", stderr(&dry));
    let plan = listed(&stdout(&dry));
    assert!(
        plan.iter()
            .any(|o| o.starts_with(&format!("image {a_id}:"))),
        "{}",
        stdout(&dry)
    );
    let before = engine_objects();
    let o = xtask_in(&a, &["clean"], &[]);
    assert!(o.status.success(), "clean: {}", stderr(&o));
    let gone: BTreeSet<String> = before.difference(&engine_objects()).cloned().collect();
    // Everything it listed went; of a's objects, nothing else went (other
    // scenarios may remove their own meanwhile).
    let gone_of_a: BTreeSet<String> = gone.iter().filter(|o| o.contains(&a_id)).cloned().collect();
    let listed_of_a: BTreeSet<String> =
        plan.iter().filter(|o| o.contains(&a_id)).cloned().collect();
    assert!(
        plan.is_subset(&gone) && gone_of_a == listed_of_a,
        "clean removed other than its dry run listed:\n{}\ngone: {gone:?}",
        stdout(&dry)
    );

    assert_eq!(
        running_b(),
        b_services,
        "clean of a touched b's kept cluster"
    );
    let o = xtask_in(&b, &["status"], &[]);
    assert!(
        o.status.success(),
        "b's status after clean of a: {}",
        stderr(&o)
    );
    let left = engine_objects();
    for kept in [
        format!("image {foreign_image}"),
        format!("volume {foreign_volume}"),
    ] {
        assert!(left.contains(&kept), "{kept} was removed");
    }
    assert!(
        left.iter()
            .any(|o| o.starts_with(&format!("image {b_id}:"))),
        "b's image went"
    );

    let o = xtask_in(&b, &["down"], &[]);
    assert!(o.status.success(), "down b: {}", stderr(&o));
    docker(&["image", "rm", &foreign_image, &derived_image]);
    docker(&["volume", "rm", &foreign_volume]);
}
