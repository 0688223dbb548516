//! `cargo xtask doctor`: each check one line, ok or the problem and its fix.

use std::path::Path;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::cli::Doctor;
use crate::context::Invocation;
use crate::docker::Docker;
use crate::downloads;
use crate::exec;
use crate::image;
use crate::run::ExitCode;
use crate::tools;
use crate::ui::Ui;
use crate::workspace::{Location, Workspace};

impl Doctor {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let problems = run(&inv.sh, &inv.loc);
        if problems > 0 {
            return Err(ExitCode(1).into());
        }
        Ok(())
    }
}

/// One line per check, counting the problems that would stop `dist-test`.
struct Report {
    problems: usize,
}

impl Report {
    fn line(&mut self, ok: bool, what: &str, detail: String) {
        if !ok {
            self.problems += 1;
        }
        let mark = if ok { "ok     " } else { "PROBLEM" };
        crate::outln!("{mark} {what:<14} {detail}");
    }
}

/// The harness's disk use on the engine: this checkout's, the other
/// checkouts', what they share, and what `clean` and `clean --all` free.
fn harness_disk(docker: &Docker, ws: &Workspace) -> String {
    use crate::docker::human;
    use crate::footprint::{busy, plan, Footprint, Owner};
    let Ok(fp) = Footprint::read(docker) else {
        return "unknown (docker system df failed)".into();
    };
    let me = Owner::Checkout(ws.checkout_id.clone());
    let mine = fp.size(|i| i.owner == me);
    let shared = fp.size(|i| i.owner == Owner::Shared);
    let others = fp.size(|i| i.owner != me && i.owner != Owner::Shared);
    let cache = fp.size(|i| i.kind == crate::footprint::Kind::BuildCache);
    let n_others = fp
        .checkouts()
        .iter()
        .filter(|c| **c != ws.checkout_id)
        .count();
    let roots = fp.roots(Some((&ws.checkout_id, &ws.root)));
    let (clusters, b) = busy::read(docker, &roots).unwrap_or_default();
    let used = fp.used_by(ws);
    let orphans = fp.orphans();
    let frees = |all| {
        let scope = plan::Scope {
            me: &ws.checkout_id,
            all,
            used: &used,
            orphans: &orphans,
        };
        human(plan::plan(&fp, &clusters, &b, &scope).size())
    };
    format!(
        "this checkout {}, {n_others} other checkout(s) {}, shared {}; the harness's build \
         cache {} (bound {}); `cargo xtask clean` frees {}, `clean --all` {}",
        human(mine),
        human(others),
        human(shared),
        human(cache),
        human(ws.config.image.build_cache_mb * 1_000_000),
        frees(false),
        frees(true)
    )
}

/// Print every check; return how many problems would stop `dist-test`.
pub fn run(sh: &Shell, loc: &Location) -> usize {
    let mut r = Report { problems: 0 };
    let ws = match Workspace::load(loc) {
        Ok(ws) => {
            r.line(true, "config", loc.config.display().to_string());
            Some(ws)
        }
        Err(e) => {
            r.line(false, "config", format!("{e:#}"));
            None
        }
    };
    let Some(docker) = check_docker(sh, &mut r) else {
        return r.problems;
    };
    if let Some(ws) = &ws {
        for python in ws.config.image.suites.keys() {
            let (ok, route) = base_route(&docker, ws, python);
            r.line(ok, &format!("base, Python {python}"), route);
        }
        match free_disk_gib(sh, &ws.target) {
            Some(g) if g >= 5.0 => r.line(true, "disk", format!("{g:.0} GiB free under target/")),
            Some(g) => r.line(false, "disk", format!("{g:.1} GiB free under target/; the image needs about 5 GiB while it builds: free some space (`docker system prune`)")),
            None => r.line(true, "disk", "free space unknown".into()),
        }
        r.line(true, "harness disk", harness_disk(&docker, ws));
    }
    match tools::ca_bundle() {
        Some(p) => r.line(
            true,
            "CA bundle",
            format!("{} (passed to builds as a secret)", p.display()),
        ),
        None => r.line(
            true,
            "CA bundle",
            "none found; builds use the image's own".into(),
        ),
    }
    r.problems
}

/// The tools, the engine, compose and BuildKit; the docker CLI when the
/// engine answers.
fn check_docker<'a>(sh: &'a Shell, r: &mut Report) -> Option<Docker<'a>> {
    let tools = match tools::detect(sh) {
        Ok(t) => t,
        Err(e) => {
            r.line(false, "tools", format!("{e:#}"));
            return None;
        }
    };
    r.line(
        true,
        "docker client",
        tools.docker.cli.display().to_string(),
    );
    let docker = Docker::new(sh, tools.docker.clone(), Ui::default());
    match docker.server_version() {
        Some(v) => r.line(true, "engine", v),
        None => {
            r.line(
                false,
                "engine",
                format!("{:#}", docker.check_engine().unwrap_err()),
            );
            return None;
        }
    }
    r.line(true, "compose", tools.compose.describe());
    match &tools.docker.builder {
        Some(b) => r.line(true, "buildkit", format!("builds with {}", b.display())),
        None => r.line(
            false,
            "buildkit",
            format!("{:#}", tools.docker.builder().unwrap_err()),
        ),
    }
    Some(docker)
}

/// Which way the build gets its base image, and what that costs: present,
/// pulled, or built once from Debian's packages with debootstrap (the
/// installed one, or the project's own, fetched pinned and hash-checked).
fn base_route(docker: &Docker, ws: &Workspace, python: &str) -> (bool, String) {
    let base = ws.config.image.base_for(python);
    let fallback = image::fallback_tag(ws, python).unwrap_or_default();
    if docker.image_exists(&base) {
        return (true, format!("{base} present"));
    }
    if docker.image_exists(&fallback) {
        return (
            true,
            format!("{base} absent; using {fallback}, built before from Debian's packages"),
        );
    }
    if docker.pull(&base) {
        return (true, format!("{base} pulled"));
    }
    let cost = "once, about 40 s and 35 MB of Debian packages";
    if !cfg!(target_os = "linux") {
        return (
            false,
            format!("{base} cannot be pulled, and building it from Debian's packages needs Linux: `docker load` it"),
        );
    }
    let how = match downloads::Debootstrap::at_hand(ws) {
        Some(d) => format!("with {}", d.describe()),
        None => format!(
            "with debootstrap {} fetched from {} (sha256-checked) into target/dist-test/tools/",
            ws.config.image.debootstrap_version, ws.config.image.fallback_mirror
        ),
    };
    (
        true,
        format!("{base} cannot be pulled; {fallback} will be built from Debian's packages {how}: {cost}"),
    )
}

fn free_disk_gib(sh: &Shell, path: &Path) -> Option<f64> {
    let out = exec::read(cmd!(sh, "df -Pk {path}"), exec::QUERY, Ui::default()).ok()?;
    let kb: f64 = out
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}
