//! GitHub-flavoured Markdown from text the xtask does not control (test ids,
//! tracebacks, service logs): it stays text, and cannot break out of its
//! block or table cell.

use std::fmt::Write as _;

/// The end of a long text, where a traceback has its exception and a log
/// its last words: at most `lines` lines and `chars` characters, with a
/// note of what was left out.
pub fn excerpt(text: &str, lines: usize, chars: usize) -> String {
    let text = clean(text);
    let all: Vec<&str> = text.trim_matches('\n').lines().collect();
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for line in all.iter().rev().take(lines) {
        let n = line.chars().count();
        if used + n > chars {
            let room = chars.saturating_sub(used);
            kept.push(format!(
                "…{}",
                line.chars().skip(n - room).collect::<String>()
            ));
            break;
        }
        used += n;
        kept.push(line.to_string());
    }
    let mut out = String::new();
    if kept.len() < all.len() {
        let _ = writeln!(out, "… ({} earlier lines)", all.len() - kept.len());
    }
    for line in kept.iter().rev() {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A fenced code block that the text cannot close: the fence is longer than
/// any run of backticks in it.
pub fn fenced(text: &str) -> String {
    let text = clean(text);
    let longest = longest_run(&text, '`');
    let fence = "`".repeat(longest.max(2) + 1);
    let body = text.trim_end_matches('\n');
    format!("{fence}text\n{body}\n{fence}\n\n")
}

/// An inline code span around any text.
pub fn code(text: &str) -> String {
    let text = clean(text).replace('\n', " ");
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// Text that Markdown must not interpret (a title, a message): one line,
/// with Markdown and HTML characters escaped.
pub fn inline(text: &str) -> String {
    let mut out = String::new();
    for ch in clean(text).replace('\n', " ").chars() {
        if "\\`*_[]<>#|~!&".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// A table cell: one line, and `|` escaped (also inside a code span, as GFM wants).
pub fn cell(text: &str) -> String {
    let mut out = String::new();
    for ch in text.replace('\n', " ").chars() {
        if ch == '|' && !out.ends_with('\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

pub fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

fn longest_run(text: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Without ANSI escape sequences and control characters other than newline
/// and tab (a `\r\n` becomes `\n`).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_and_cannot_break_out_of_their_block() {
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let e = excerpt(&text, 30, 10_000);
        assert!(e.starts_with("… (70 earlier lines)\nline 71\n"), "{e}");
        assert!(e.ends_with("line 100\n"), "{e}");
        assert_eq!(e.lines().count(), 31);
        let e = excerpt(&format!("{}y", "x".repeat(50)), 30, 10);
        assert_eq!(e, format!("…{}y\n", "x".repeat(9)));
        assert_eq!(excerpt("a\nb\n", 30, 100), "a\nb\n");

        let nasty = "before\n```\n# not a heading\n````\nafter\x1b[31m red\x1b[0m\r\n";
        let block = fenced(nasty);
        assert!(block.starts_with("`````text\n"), "{block}");
        assert!(block.ends_with("\n`````\n\n"), "{block}");
        assert!(block.contains("after red\n"), "{block}");
        assert!(!block.contains('\x1b') && !block.contains('\r'));
    }

    #[test]
    fn markdown_in_names_stays_text() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
        assert_eq!(cell("`x|y`"), "`x\\|y`");
        assert_eq!(inline("<b>*x*</b> | #1"), "\\<b\\>\\*x\\*\\</b\\> \\| \\#1");
        assert_eq!(first_line("\n  \nfirst\nsecond"), "first");
    }
}
