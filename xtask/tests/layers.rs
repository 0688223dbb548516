//! The shape of `xtask/src`, read from its text (no Docker): the modules
//! form layers without a cycle, the backend stays behind `cluster/`, and no
//! function or file grows past what a newcomer reads in one go. Each check
//! names what breaks it and where.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Lines a file may have, tests included.
const MAX_FILE_LINES: usize = 400;
/// Lines a function may have, its signature and closing brace included.
const MAX_FN_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, with its text.
fn files() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(src()).unwrap().display().to_string()
}

fn is_test_file(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "tests.rs") || rel(p).contains("/tests/")
}

/// The text before its test module (`#[cfg(test)]` then `mod`), comments
/// (lines from `//` on, outside strings) removed.
fn product(text: &str) -> String {
    let mut lines = Vec::new();
    let mut all = text.lines().peekable();
    while let Some(line) = all.next() {
        let next = all.peek().map(|l| l.trim_start()).unwrap_or("");
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") {
            break;
        }
        lines.push(without_comment(line));
    }
    lines.join("\n")
}

/// `line` up to a `//` that is not inside a string.
fn without_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_string = !in_string,
            '/' if !in_string && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

/// The top-level module a file belongs to (`cluster` for
/// `cluster/spec.rs`, `summary` for `summary.rs`).
fn top(p: &Path) -> String {
    let r = rel(p);
    match r.split_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => r.trim_end_matches(".rs").to_string(),
    }
}

/// The top-level modules a text names as `crate::<module>`, in a `use`
/// line (braces spread over lines included) or in a path.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    // `use crate::{a, b::c};`
    let mut rest = text;
    while let Some(i) = rest.find("use crate::{") {
        rest = &rest[i + "use crate::{".len()..];
        let body = &rest[..rest.find(';').unwrap_or(rest.len())];
        let mut depth = 0;
        let mut item = String::new();
        for c in body.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.insert(first_segment(&item));
                    item.clear();
                }
                _ => item.push(c),
            }
        }
        out.insert(first_segment(&item));
    }
    out.remove("");
    out
}

fn first_segment(item: &str) -> String {
    item.trim()
        .split("::")
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Top-level module -> the top-level modules its product code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files().iter().map(|(p, _)| top(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, text) in files().iter().filter(|(p, _)| !is_test_file(p)) {
        let me = top(p);
        let mut code = product(text);
        // In a file of the crate's root (`summary.rs`, `cluster/mod.rs`),
        // `super::` is the crate.
        let depth = rel(p).matches('/').count();
        if depth == 0 || (depth == 1 && rel(p).ends_with("/mod.rs")) {
            code = code.replace("super::", "crate::");
        }
        let uses = named_modules(&code)
            .into_iter()
            .filter(|m| modules.contains(m) && *m != me)
            .collect::<Vec<_>>();
        graph.entry(me).or_default().extend(uses);
    }
    graph
}

/// A cycle of `graph`, as the modules around it, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_modules_form_layers_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 20, "too few modules read: {:?}", graph.keys());
    assert!(
        graph["flow"].contains("cluster") && graph["cluster"].contains("docker"),
        "the reading misses imports: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules import each other in a circle: {}; move what both need into the lower one",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn a_circle_is_found() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap().join(">"), "a>b>c>a");
    assert_eq!(
        named_modules("use crate::{a, b::{c, d}};\nlet x = crate::e::f(); xcrate::g"),
        ["a", "b", "e"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(
        product("a // b\n\"//\" c\n#[cfg(test)]\nmod tests;\nd"),
        "a \n\"//\" c"
    );
    assert!(is_fn_prefix("pub(super) const ") && is_fn_prefix(""));
    assert!(!is_fn_prefix("let x = "));
}

/// `file:line what` for each product line, outside the top-level modules
/// `allowed` and the tests, where `hit` finds something.
fn product_lines_where(allowed: &[&str], hit: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut found = Vec::new();
    for (p, text) in files() {
        if allowed.contains(&top(&p).as_str()) || is_test_file(&p) {
            continue;
        }
        for (n, line) in product(&text).lines().enumerate() {
            if let Some(what) = hit(line) {
                found.push(format!("{}:{} {what}", rel(&p), n + 1));
            }
        }
    }
    found
}

#[test]
fn only_cluster_knows_the_backends() {
    let variants = [
        "Backend::Compose",
        "Backend::Swarm",
        "Kind::Compose",
        "Kind::Swarm",
    ];
    let found = product_lines_where(&["cluster"], |line| {
        variants
            .iter()
            .find(|v| line.contains(*v))
            .map(|v| v.to_string())
    });
    assert!(
        found.is_empty(),
        "a backend named outside cluster/ (ask the cluster, or add a method to its backend): {found:?}"
    );
}

#[test]
fn only_the_commands_and_the_flow_take_the_whole_context() {
    let found = product_lines_where(&["main", "commands", "flow", "context"], |line| {
        let mut words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        words
            .any(|w| w == "Ctx" || w == "Invocation")
            .then(String::new)
    });
    assert!(
        found.is_empty(),
        "the whole Ctx (or the Invocation) below main, commands/ and flow/ (take the workspace, docker or ui it uses): {found:?}"
    );
}

#[test]
fn files_and_functions_stay_short() {
    let mut long = Vec::new();
    for (p, text) in files() {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            long.push(format!("{} has {} lines", rel(&p), lines.len()));
        }
        for (start, len) in functions(&lines) {
            if len > MAX_FN_LINES {
                long.push(format!(
                    "{}:{} a function of {len} lines",
                    rel(&p),
                    start + 1
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines a file or {MAX_FN_LINES} a function: {long:?}"
    );
}

/// `pub(super) const unsafe ` and the like: what may stand before `fn`.
fn is_fn_prefix(before: &str) -> bool {
    before.split_whitespace().all(|w| {
        w == "pub"
            || (w.starts_with("pub(") && w.ends_with(')'))
            || ["const", "async", "unsafe", "extern"].contains(&w)
    })
}

/// Each `fn` item's first line and length, from its line to the line that
/// closes its body at the same indentation.
fn functions(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let is_fn = t
            .split_once("fn ")
            .is_some_and(|(before, _)| is_fn_prefix(before));
        if !is_fn || t.ends_with(';') {
            continue;
        }
        let indent = line.len() - t.len();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i..].iter().position(|l| l.starts_with(&close)) {
            out.push((i, end + 1));
        }
    }
    out
}
