use super::*;
use crate::cluster::spec::{Image, Mounts, Size};
use crate::docker::Clients;

#[test]
fn a_cluster_is_its_definition_on_the_command_line() {
    let sh = xshell::Shell::new().unwrap();
    let clients = Clients {
        cli: "/usr/bin/docker".into(),
        builder: None,
    };
    let docker = Docker::new(&sh, clients, Ui::default());
    let compose = Flavour::Standalone {
        bin: "/usr/bin/docker-compose".into(),
        version: "1.29.2".into(),
    };
    let ws = crate::workspace::for_tests();
    let def = Definition {
        name: "ltdist-repo-0123abcd-r1".into(),
        size: Size {
            workers: 3,
            engines: 1,
            worker_cpus: 2,
        },
        publish: true,
        warm: false,
        attach: None,
        image: Image {
            id: "sha256:0123".into(),
            tag: "ltdist-repo-0123abcd:p1".into(),
            runtime: "ltdist-x-runtime-0123".into(),
            preload: vec!["numpy".into(), "dask.distributed".into()],
        },
        mounts: Mounts {
            source: "/src/LiberTEM".into(),
            data: "/data/lt".into(),
            results: "/repo/target/dist-test/runs/1/pytest".into(),
        },
    };
    let saved = Backend::Compose {
        runtime: "rt".into(),
        numba: "nb".into(),
    };
    let cluster = ComposeCluster::new(&ws, &docker, &compose, def, Some(saved.clone()));
    assert_eq!(
        cluster.compose.cmd(&sh, &["up", "--detach"]).to_string(),
        "/usr/bin/docker-compose --file /repo/packaging/docker/docker-compose.yml \
         --file /repo/target/dist-test/size-3x1.yml --file /repo/packaging/docker/publish.yml \
         --project-name ltdist-repo-0123abcd-r1 up --detach"
    );
    let env = &cluster.compose.env;
    for (k, v) in [
        ("LT_IMAGE", "sha256:0123"),
        ("LT_SOURCE_DIR", "/src/LiberTEM"),
        ("LT_DATA_DIR", "/data/lt"),
        ("LT_RUNS_DIR", "/repo/target/dist-test/runs"),
        ("LT_CHECKOUT", "ltdist-repo-0123abcd"),
        ("LT_ENGINES", "1"),
        ("LT_VENV_VOLUME", "rt"),
        ("LT_NUMBA_VOLUME", "nb"),
        ("LT_PRELOAD", "numpy,dask.distributed"),
    ] {
        assert!(env.contains(&(k.into(), v.into())), "{k}={v} in {env:?}");
    }
    let cache = ws.pytest_cache(Path::new("/src/LiberTEM"));
    assert!(
        env.contains(&("LT_PYTEST_CACHE".into(), cache.display().to_string())),
        "{env:?}"
    );
    assert_eq!(cluster.backend(), saved);
    assert!(!Path::new("/repo").exists(), "nothing was written");
}
