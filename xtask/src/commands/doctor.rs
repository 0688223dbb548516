//! `cargo xtask doctor`: each check one line, ok or the problem and its fix.

use std::path::Path;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::cli::Doctor;
use crate::context::Invocation;
use crate::downloads;
use crate::image;
use crate::run::ExitCode;
use crate::tools;
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

/// Print every check; return how many problems would stop `dist-test`.
pub fn run(sh: &Shell, loc: &Location) -> usize {
    let mut problems = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        if !ok {
            problems += 1;
        }
        println!(
            "{} {what:<14} {detail}",
            if ok { "ok     " } else { "PROBLEM" }
        );
    };
    let ws = match Workspace::load(loc) {
        Ok(ws) => {
            line(true, "config", loc.config.display().to_string());
            Some(ws)
        }
        Err(e) => {
            line(false, "config", format!("{e:#}"));
            None
        }
    };
    let tools = match tools::detect(sh) {
        Ok(t) => t,
        Err(e) => {
            line(false, "tools", format!("{e:#}"));
            return problems;
        }
    };
    line(
        true,
        "docker client",
        tools.docker.cli.display().to_string(),
    );
    match tools.docker.check_engine(sh) {
        Ok(()) => {
            let cli = &tools.docker.cli;
            let f = "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})";
            let v = cmd!(sh, "{cli} version --format {f}")
                .quiet()
                .read()
                .unwrap_or_default();
            line(true, "engine", v.trim().to_string());
        }
        Err(e) => {
            line(false, "engine", format!("{e:#}"));
            return problems;
        }
    }
    line(true, "compose", tools.compose.describe());
    match &tools.docker.builder {
        Some(b) => line(true, "buildkit", format!("builds with {}", b.display())),
        None => line(
            false,
            "buildkit",
            format!("{:#}", tools.docker.builder().unwrap_err()),
        ),
    }
    if let Some(ws) = &ws {
        let docker = &tools.docker.cli;
        let (ok, route) = base_route(sh, ws, docker);
        line(ok, "base image", route);
        let free = free_disk_gib(sh, &ws.target);
        match free {
            Some(g) if g >= 5.0 => line(true, "disk", format!("{g:.0} GiB free under target/")),
            Some(g) => line(false, "disk", format!("{g:.1} GiB free under target/; the image needs about 5 GiB while it builds: free some space (`docker system prune`)")),
            None => line(true, "disk", "free space unknown".into()),
        }
    }
    match tools::ca_bundle() {
        Some(p) => line(
            true,
            "CA bundle",
            format!("{} (passed to builds as a secret)", p.display()),
        ),
        None => line(
            true,
            "CA bundle",
            "none found; builds use the image's own".into(),
        ),
    }
    problems
}

/// Which way the build gets its base image, and what that costs: present,
/// pulled, or built once from Debian's packages with debootstrap (the
/// installed one, or the project's own, fetched pinned and hash-checked).
fn base_route(sh: &Shell, ws: &Workspace, docker: &Path) -> (bool, String) {
    let base = &ws.config.image.base;
    let fallback = image::fallback_tag(ws);
    if image::image_exists(sh, docker, base) {
        return (true, format!("{base} present"));
    }
    if image::image_exists(sh, docker, &fallback) {
        return (
            true,
            format!("{base} absent; using {fallback}, built before from Debian's packages"),
        );
    }
    let pulled = cmd!(sh, "{docker} pull --quiet {base}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if pulled {
        return (true, format!("{base} pulled"));
    }
    let cost = "once, about 45 s and 35 MB of Debian packages";
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
    let out = cmd!(sh, "df -Pk {path}").quiet().read().ok()?;
    let kb: f64 = out
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}
