//! `report.html`, one self-contained page per run (no network, no CDN):
//! the result, a timeline of the run (phases, each service from running to
//! ready, each test's executions), the per-test table with the repeats'
//! results and each test's duration over the history, the failures grouped
//! by cause with the services' log lines around them, and the phases.

mod failures;
mod svg;

use std::fmt::Write;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::history::{trends, Entry};
use crate::summary::Summary;

/// How many runs of the history a test's chart shows.
const HISTORY_RUNS: usize = 20;

/// HTML-escaped text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2329; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.ok { color: #176b2c; } .bad { color: #b3261e; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #e3e6e8; text-align: left; }
th { cursor: pointer; user-select: none; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict-flaky { color: #9a5b00; font-weight: 600; } .verdict-failed { color: #b3261e; font-weight: 600; }
.verdict-timed-out, .verdict-infrastructure { color: #7a1fa2; font-weight: 600; }
.filter button { margin-right: 6px; } .filter button[aria-pressed="true"] { font-weight: 700; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2329; }
svg .label { text-anchor: end; } svg .tick { fill: #6b7280; }
svg .grid { stroke: #eef0f2; } svg .ready { stroke: #111; stroke-width: 2; }
svg .phase { fill: #9db4d1; stroke: #fff; stroke-width: 1; } svg .service { fill: #c9d5e3; }
svg .on-bar { fill: #0f2740; font-size: 10px; }
svg .collect { fill: #e8d8a8; } svg .wait { fill: #f1e9d2; } svg .run { fill: #d6c28a; }
svg .pass { fill: #4caf50; } svg .fail { fill: #d9453b; } svg .skip { fill: #c0c4c8; } svg .unknown { fill: #888; }
svg.history polyline { fill: none; stroke: #5474a0; stroke-width: 1.5; } svg.history .point { fill: #5474a0; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; max-height: 320px; font-size: 12px; }
"#;

/// Sorting the table by a column, and showing only the tests of one
/// verdict: the only script, and it needs nothing else.
const SCRIPT: &str = r#"
document.querySelectorAll(".filter button").forEach(function (b) {
  b.addEventListener("click", function () {
    var want = b.dataset.verdict;
    document.querySelectorAll(".filter button").forEach(function (o) {
      o.setAttribute("aria-pressed", o === b ? "true" : "false");
    });
    document.querySelectorAll("tr[data-verdict]").forEach(function (r) {
      r.hidden = want !== "all" && r.dataset.verdict !== want;
    });
  });
});
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var dir = th.dataset.dir === "asc" ? -1 : 1;
    th.dataset.dir = dir === 1 ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent;
      var y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      return dir * (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"#;

/// Write the report of `summary` to `path`, with the charts drawn from `history`.
/// The log excerpts it shows are read from the folder `path` is in.
pub fn write(path: &Path, summary: &Summary, history: &[Entry]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::write(path, page(summary, history, dir))
        .with_context(|| format!("writing {}", path.display()))
}

/// The whole page of the run in folder `dir`.
pub fn page(s: &Summary, history: &[Entry], dir: &Path) -> String {
    let c = &s.counts;
    let ok = s.exit_code == 0;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>dist-test {id}</title><style>{STYLE}</style></head><body>\n\
         <h1>dist-test {id}: <span class=\"{cls}\">{verdict}{passed} passed, {failed} failed, {errors} errors, {skipped} skipped; exit code {code}</span></h1>\n",
        id = esc(&s.run_id),
        verdict = s.verdict.map_or(String::new(), |v| format!("{}: ", v.word())),
        cls = if ok { "ok" } else { "bad" },
        passed = c.passed,
        failed = c.failed,
        errors = c.errors,
        skipped = c.skipped,
        code = s.exit_code,
    );
    let _ = writeln!(
        out,
        "<p>project <code>{}</code>, Python {}, cluster <code>{}</code>{}; \
         <a href=\"summary.json\">summary.json</a>, <a href=\"pytest/junit.xml\">junit.xml</a>, <a href=\"logs/\">logs</a></p>",
        esc(&s.project),
        esc(s.python.as_deref().unwrap_or("?")),
        esc(&s.compose_project),
        s.repeat.as_ref().map_or(String::new(), |r| format!(
            "; {} of {} passes{}{}",
            r.ran,
            r.asked,
            if r.fresh { ", a fresh cluster each" } else { ", on one cluster" },
            if r.until_failure { ", until a failure" } else { "" }
        ))
    );
    if let Some(e) = &s.error {
        let _ = writeln!(out, "<p class=\"bad\">error: {}</p>", esc(e));
    }
    if let Some(t) = &s.timeline {
        out.push_str("<h2>Timeline</h2>\n");
        out.push_str(&svg::timeline(t));
    }
    failures::sections(&mut out, s);
    tests_table(&mut out, s, history);
    causes(&mut out, s, dir);
    phases(&mut out, s);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn tests_table(out: &mut String, s: &Summary, history: &[Entry]) {
    out.push_str("<h2>Tests</h2>\n");
    let mut verdicts: Vec<&str> = s.tests.iter().map(|t| t.verdict.word()).collect();
    verdicts.sort_unstable();
    verdicts.dedup();
    if verdicts.len() > 1 {
        out.push_str(
            "<p class=\"filter\">show: <button data-verdict=\"all\" aria-pressed=\"true\">all</button>",
        );
        for v in verdicts {
            let _ = write!(
                out,
                "<button data-verdict=\"{v}\" aria-pressed=\"false\">{v}</button>"
            );
        }
        out.push_str("</p>\n");
    }
    out.push_str(
        "<table class=\"sortable\"><thead><tr><th>test</th><th>runs</th><th>passed</th>\
         <th>failed</th><th>pass rate</th><th>min s</th><th>median s</th><th>max s</th><th>verdict</th>\
         <th>median s over the last runs</th></tr></thead><tbody>\n",
    );
    let trends = trends(history, "", HISTORY_RUNS);
    for t in &s.tests {
        let rate = t
            .pass_rate
            .map_or("-".into(), |p| format!("{:.0}%", p * 100.0));
        let chart = trends
            .iter()
            .find(|x| x.id == t.id)
            .map(|x| {
                let points: Vec<(String, Option<f64>)> =
                    x.points.iter().map(|p| (p.0.clone(), p.1)).collect();
                svg::history_chart(&points)
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr data-test=\"{id}\" data-verdict=\"{v}\"><td>{id}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\" data-v=\"{}\">{rate}</td><td class=\"num\">{:.2}</td>\
             <td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"verdict-{class}\">{v}</td><td>{chart}</td></tr>",
            t.runs,
            t.passed,
            t.failed + t.errors,
            t.pass_rate.unwrap_or(-1.0),
            t.min_s,
            t.median_s,
            t.max_s,
            id = esc(&t.id),
            v = t.verdict.word(),
            class = t.verdict.word().replace(' ', "-"),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn causes(out: &mut String, s: &Summary, dir: &Path) {
    if s.causes.is_empty() {
        return;
    }
    out.push_str("<h2>Failures by cause</h2>\n");
    for (n, c) in s.causes.iter().enumerate() {
        let _ = writeln!(
            out,
            "<h3 id=\"cause-{}\">{}x <code>{}</code></h3><p>first seen as <code>{}</code></p><ul>",
            n + 1,
            c.hits.len(),
            esc(&c.cause),
            esc(&c.example)
        );
        for h in &c.hits {
            let logs = h.logs.as_ref().map_or(String::new(), |l| {
                format!(
                    " (<a href=\"{0}\">the services' log lines around it</a>)",
                    esc(l)
                )
            });
            let _ = writeln!(out, "<li>{} in repeat {}{logs}</li>", esc(&h.id), h.repeat);
        }
        out.push_str("</ul>\n");
        if let Some(text) = c
            .hits
            .iter()
            .find_map(|h| excerpt_text(dir, h.logs.as_deref()))
        {
            let _ = writeln!(out, "<pre>{}</pre>", esc(&text));
        }
    }
}

/// A cause's log excerpt (relative to the run folder), read back for the page.
fn excerpt_text(dir: &Path, rel: Option<&str>) -> Option<String> {
    let text = fs::read_to_string(dir.join(rel?)).ok()?;
    Some(text.lines().take(60).collect::<Vec<_>>().join("\n"))
}

fn phases(out: &mut String, s: &Summary) {
    out.push_str("<h2>Phases</h2>\n<table><tbody>\n");
    for (name, secs) in &s.phases.0 {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{secs:.1} s</td></tr>",
            esc(name)
        );
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests;
