//! The report's account of what went wrong: the run's verdict, the dead
//! services with their last lines, each deadline passed with links to the
//! stacks and the cluster's dump, each failing test's traceback and
//! output, and the environment the run ran on.

use std::fmt::Write as _;

use super::esc;
use crate::summary::Summary;

/// Everything above, in the order a developer reads it.
pub fn sections(out: &mut String, s: &Summary) {
    dead(out, s);
    timeouts(out, s);
    failures(out, s);
    environment(out, s);
}

fn dead(out: &mut String, s: &Summary) {
    if s.dead_services.is_empty() {
        return;
    }
    out.push_str("<h2>Dead services</h2>\n");
    for d in &s.dead_services {
        let _ = writeln!(
            out,
            "<h3 class=\"bad\">{}</h3><p>{}</p><pre>{}</pre>",
            esc(&d.describe()),
            esc(&d.state),
            esc(&d.last_lines)
        );
    }
}

fn timeouts(out: &mut String, s: &Summary) {
    if s.snapshots.is_empty() {
        return;
    }
    out.push_str("<h2>Timed out</h2>\n<ul>\n");
    for snap in &s.snapshots {
        let what = snap.test.as_deref().unwrap_or("the suite's deadline");
        let mut links: Vec<String> = snap
            .stacks
            .iter()
            .map(|f| {
                let name = f.rsplit('/').next().unwrap_or(f).trim_end_matches(".txt");
                format!("<a href=\"{}\">{}</a>", esc(f), esc(name))
            })
            .collect();
        for (f, label) in [
            (&snap.dask, "Dask cluster dump"),
            (&snap.engines, "ipyparallel engines"),
        ] {
            if let Some(f) = f {
                links.push(format!("<a href=\"{}\">{label}</a>", esc(f)));
            }
        }
        let usable = match (&snap.usable, &snap.why) {
            (true, _) => "the cluster was still usable; the suite went on".to_string(),
            (false, why) => format!(
                "the cluster was not usable: {}",
                why.as_deref().unwrap_or("?")
            ),
        };
        let _ = writeln!(
            out,
            "<li><code>{}</code>: stacks of {}; {}</li>",
            esc(what),
            links.join(", "),
            esc(&usable)
        );
    }
    out.push_str("</ul>\n");
}

fn failures(out: &mut String, s: &Summary) {
    let failing: Vec<_> = s.tests.iter().filter(|t| t.failure.is_some()).collect();
    if failing.is_empty() {
        return;
    }
    out.push_str("<h2>Failures</h2>\n");
    for t in failing {
        let Some(f) = &t.failure else { continue };
        let bundle = f.bundle.as_ref().map_or(String::new(), |b| {
            format!(" (<a href=\"{}\">bundle</a>)", esc(b))
        });
        let _ = writeln!(
            out,
            "<h3 class=\"bad\" data-outcome=\"{v}\">{v}: <code>{}</code>{bundle}</h3>",
            esc(&t.id),
            v = t.verdict.word()
        );
        for p in &f.phases {
            let _ = writeln!(
                out,
                "<details open><summary>{} traceback</summary><pre>{}</pre></details>",
                esc(&p.when),
                esc(&p.longrepr)
            );
            for (name, body) in [
                ("stdout", &p.stdout),
                ("stderr", &p.stderr),
                ("log", &p.log),
            ] {
                if !body.is_empty() {
                    let _ = writeln!(
                        out,
                        "<details><summary>captured {name}</summary><pre>{}</pre></details>",
                        esc(body)
                    );
                }
            }
        }
    }
}

fn environment(out: &mut String, s: &Summary) {
    let Some(e) = &s.environment else { return };
    out.push_str("<h2>Environment</h2>\n<table>\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    };
    let commit = |c: &Option<String>, d: Option<bool>| match c {
        Some(c) => format!(
            "{c}{}",
            if d == Some(true) {
                " (with changes)"
            } else {
                ""
            }
        ),
        None => "not a git checkout".into(),
    };
    row("project", commit(&e.project_commit, e.project_dirty));
    row("harness", commit(&e.harness_commit, e.harness_dirty));
    row("Python", s.python.clone().unwrap_or_default());
    row("engine", e.engine.clone().unwrap_or_default());
    for (k, v) in e.key_versions() {
        row(k, v.to_string());
    }
    for (service, node) in &s.nodes {
        row(&format!("node of {service}"), node.clone());
    }
    for c in &s.containers {
        let code = c
            .exit_code
            .map_or(String::new(), |x| format!(", exit code {x}"));
        let oom = if c.oom_killed {
            ", killed for memory"
        } else {
            ""
        };
        row(
            &format!("container {}", c.service),
            format!("{}{code}{oom}, {} restarts", c.status, c.restarts),
        );
    }
    out.push_str("</table>\n");
}
