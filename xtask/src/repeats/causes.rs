//! Failures grouped by cause: the exception type and the first line of its
//! message, with what differs between two occurrences of one cause taken
//! out (addresses, ports, ids, paths), and the tests and repeats that hit
//! each. The services' log lines around each failure are cut from their
//! logs by time (Docker's `--timestamps`) and kept beside the run.

use serde::{Deserialize, Serialize};

/// One failure or error of one test in one repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub id: String,
    pub repeat: u32,
    /// pytest's one-line reason (`AssertionError: …`, `failed on setup with "…"`).
    pub message: String,
    /// When the test ran (Unix times), where known.
    pub span: Option<(f64, f64)>,
}

/// Where one cause struck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    pub repeat: u32,
    /// The file (in the run folder) with the services' log lines around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// One cause and every place it struck, as `summary.json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// The normalised first line.
    pub cause: String,
    /// The first occurrence's line as pytest wrote it.
    pub example: String,
    pub hits: Vec<Hit>,
}

/// The first line of `message`, with addresses, ports, ids and paths
/// replaced by placeholders, so that one cause reads the same every time.
pub fn normalise(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out = String::new();
    for word in split_keep(line.trim()) {
        out.push_str(&word_class(&word));
    }
    out
}

/// Words and the separators between them, in order.
fn split_keep(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for c in line.chars() {
        let sep = c.is_whitespace() || "'\"()[]{},;<>=".contains(c);
        if sep {
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            parts.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// One word, or its placeholder.
fn word_class(w: &str) -> String {
    let trimmed = w.trim_end_matches(['.', ':']);
    let tail = &w[trimmed.len()..];
    let is_hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let class = if trimmed.starts_with("0x") && is_hex(&trimmed[2..]) {
        "0x…"
    } else if trimmed.contains("://") {
        "<address>"
    } else if trimmed.starts_with('/') && trimmed.len() > 1 {
        "<path>"
    } else if is_address(trimmed) {
        "<address>"
    } else if let Some((host, _)) = trimmed
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && digits(p))
    {
        return format!("{}:<port>{tail}", word_class(host));
    } else if trimmed.len() >= 8
        && is_hex(&trimmed.replace('-', ""))
        && trimmed.chars().any(|c| c.is_ascii_digit())
    {
        "<id>"
    } else {
        return w.to_string();
    };
    format!("{class}{tail}")
}

/// `10.0.3.7`, `10.0.3.7:8786`
fn is_address(w: &str) -> bool {
    let host = w.split(':').next().unwrap_or("");
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Group `occurrences` by cause, most frequent first (ties: first seen).
pub fn group(occurrences: &[Occurrence]) -> Vec<Cause> {
    let mut causes: Vec<Cause> = Vec::new();
    for o in occurrences {
        let cause = normalise(&o.message);
        let hit = Hit {
            id: o.id.clone(),
            repeat: o.repeat,
            logs: None,
        };
        match causes.iter_mut().find(|c| c.cause == cause) {
            Some(c) => c.hits.push(hit),
            None => causes.push(Cause {
                cause,
                example: o.message.lines().next().unwrap_or("").to_string(),
                hits: vec![hit],
            }),
        }
    }
    causes.sort_by_key(|c| std::cmp::Reverse(c.hits.len()));
    causes
}

/// The lines of a log written with `docker logs --timestamps` whose time
/// falls within `from..=to` (Unix seconds), at most `max` of them (the last).
pub fn lines_between(log: &str, from: f64, to: f64, max: usize) -> Vec<String> {
    let picked: Vec<String> = log
        .lines()
        .filter(|l| {
            let stamp = l.split_whitespace().next().unwrap_or("");
            rfc3339_secs(stamp).is_some_and(|t| t >= from && t <= to)
        })
        .map(String::from)
        .collect();
    let skip = picked.len().saturating_sub(max);
    picked.into_iter().skip(skip).collect()
}

pub use crate::clock::rfc3339_secs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cause_reads_the_same_whatever_the_address_port_id_or_path() {
        let a = "OSError: Timed out trying to connect to tcp://10.0.3.7:8786 after 30 s";
        let b = "OSError: Timed out trying to connect to tcp://10.0.5.2:41234 after 30 s";
        assert_eq!(normalise(a), normalise(b));
        assert_eq!(
            normalise(a),
            "OSError: Timed out trying to connect to <address> after 30 s"
        );
        assert_eq!(
            normalise("FileNotFoundError: [Errno 2] No such file: '/tmp/x/raw-3f2a.raw'"),
            "FileNotFoundError: [Errno 2] No such file: '<path>'"
        );
        assert_eq!(
            normalise("KeyError: 'a1b2c3d4e5f60718' at 0x7f3a2b1c"),
            "KeyError: '<id>' at 0x…"
        );
        assert_eq!(
            normalise("ValueError: worker-1:39113 gone.\nmore"),
            "ValueError: worker-1:<port> gone."
        );
        assert_eq!(normalise("assert 3 == 4"), "assert 3 == 4");
    }

    #[test]
    fn failures_group_by_cause_most_frequent_first() {
        let o = |id: &str, repeat, message: &str| Occurrence {
            id: id.into(),
            repeat,
            message: message.into(),
            span: None,
        };
        let groups = group(&[
            o("t::a", 1, "AssertionError: one"),
            o("t::b", 2, "RuntimeError: at 0x7f01"),
            o("t::b", 4, "RuntimeError: at 0x7f99"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].cause, "RuntimeError: at 0x…");
        assert_eq!(
            groups[0].hits.iter().map(|h| h.repeat).collect::<Vec<_>>(),
            [2, 4]
        );
        assert_eq!(groups[1].example, "AssertionError: one");
    }

    #[test]
    fn log_lines_are_cut_by_their_docker_timestamps() {
        let log = "2026-12-04T21:27:20.000000000Z before\n\
                   2026-12-04T21:27:26.500000000Z during\n\
                   2026-12-04T21:27:40.000000000Z after\n";
        let t = rfc3339_secs("2026-12-04T21:27:26.000000000Z").unwrap();
        assert!((t - 1_796_419_646.0).abs() < 1e-6);
        let got = lines_between(log, t, t + 2.0, 10);
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with("during"));
    }
}
