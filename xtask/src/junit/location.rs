//! Where a test and its failure are, as the project's repository knows them:
//! pytest's node id, and the file and line from the test case's attributes
//! or the failure's traceback.

/// The project's root inside the tests container: paths under it are the
/// repository's.
pub const CONTAINER_ROOT: &str = "/src/";

/// A path as the repository knows it: relative, under the root. Paths in
/// the container's /src are made relative; other absolute paths (the
/// virtualenv's site-packages) and `..` are not the repository's.
pub(super) fn repo_path(path: &str) -> Option<String> {
    let rel = path.strip_prefix(CONTAINER_ROOT).unwrap_or(path);
    let inside = !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel.split('/').all(|part| part != ".." && !part.is_empty());
    inside.then(|| rel.to_string())
}

/// pytest's node id from xunit1's attributes: `file::Class::name` when the
/// classname is the file's dotted module path (plus classes), else
/// `classname::name`.
pub(super) fn node_id(classname: &str, name: &str, file: Option<&str>) -> String {
    if let Some(file) = file {
        let module = file.strip_suffix(".py").unwrap_or(file).replace('/', ".");
        if classname == module {
            return format!("{file}::{name}");
        }
        if let Some(classes) = classname
            .strip_prefix(module.as_str())
            .and_then(|r| r.strip_prefix('.'))
        {
            return format!("{file}::{}::{name}", classes.replace('.', "::"));
        }
        // A collection error: no classname, the module as the name.
        if classname.is_empty() && name == module {
            return file.to_string();
        }
    }
    if classname.is_empty() {
        name.to_string()
    } else {
        format!("{classname}::{name}")
    }
}

/// Where a failure belongs: the innermost traceback line in the test's own
/// file (the assertion, the fixture that raised), else the test's `def`.
/// Without a known file, the innermost traceback line in the repository.
pub(super) fn failure_location(
    text: &str,
    test_file: Option<&str>,
    def_line: Option<u32>,
) -> (Option<String>, Option<u32>) {
    let frames: Vec<(String, u32)> = text
        .lines()
        .filter_map(traceback_location)
        .filter_map(|(path, line)| repo_path(&path).map(|p| (p, line)))
        .collect();
    match test_file {
        Some(file) => match frames.iter().rev().find(|(p, _)| p == file) {
            Some((_, line)) => (Some(file.to_string()), Some(*line)),
            None => (Some(file.to_string()), def_line),
        },
        None => match frames.last() {
            Some((p, line)) => (Some(p.clone()), Some(*line)),
            None => (None, None),
        },
    }
}

/// A traceback's location line: pytest's `tests/test_x.py:16: AssertionError`
/// (also `--tb=short`'s `tests/test_x.py:16: in test_x`), or Python's
/// `  File "/src/tests/test_x.py", line 16, in test_x` (`--tb=native`).
fn traceback_location(line: &str) -> Option<(String, u32)> {
    if let Some(rest) = line.trim_start().strip_prefix("File \"") {
        let (path, rest) = rest.split_once("\", line ")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return Some((path.to_string(), digits.parse().ok()?));
    }
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (path, rest) = line.split_once(".py:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !rest[digits.len()..].starts_with(':') || path.contains(' ') {
        return None;
    }
    Some((format!("{path}.py"), digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        let file = Some("tests/test_x.py");
        assert_eq!(
            node_id("tests.test_x", "test_a[1]", file),
            "tests/test_x.py::test_a[1]"
        );
        assert_eq!(
            node_id("tests.test_x.TestA.TestB", "test_a", file),
            "tests/test_x.py::TestA::TestB::test_a"
        );
        assert_eq!(
            node_id("", "tests.test_broken", Some("tests/test_broken.py")),
            "tests/test_broken.py"
        );
        assert_eq!(node_id("pytest", "internal", None), "pytest::internal");
        assert_eq!(node_id("", "internal", None), "internal");
    }

    #[test]
    fn traceback_locations() {
        assert_eq!(
            traceback_location("tests/test_x.py:16: AssertionError"),
            Some(("tests/test_x.py".into(), 16))
        );
        assert_eq!(
            traceback_location("tests/test_x.py:16: in test_x"),
            Some(("tests/test_x.py".into(), 16))
        );
        assert_eq!(
            traceback_location("  File \"/src/tests/test_x.py\", line 7, in test_x"),
            Some(("/src/tests/test_x.py".into(), 7))
        );
        assert_eq!(traceback_location("E       assert a.py:3: b"), None);
        assert_eq!(traceback_location("    x = 'y.py:3: z'"), None);
    }

    #[test]
    fn only_the_repository_s_paths() {
        assert_eq!(
            repo_path("/src/tests/test_x.py").as_deref(),
            Some("tests/test_x.py")
        );
        assert_eq!(repo_path("/venv/lib/x.py"), None);
        assert_eq!(repo_path("../outside.py"), None);
        assert_eq!(repo_path("tests//x.py"), None);
    }

    #[test]
    fn the_innermost_frame_in_the_test_s_file() {
        let text = "tests/t.py:5: in test_a\n    helper()\ntests/helpers.py:9: in helper\n\
                    tests/t.py:7: in inner\nlib.py:1: Error";
        assert_eq!(
            failure_location(text, Some("tests/t.py"), Some(4)),
            (Some("tests/t.py".into()), Some(7))
        );
        assert_eq!(
            failure_location("no frames", Some("tests/t.py"), Some(4)),
            (Some("tests/t.py".into()), Some(4))
        );
        // No file known: the innermost frame in the repository.
        assert_eq!(
            failure_location(text, None, None),
            (Some("lib.py".into()), Some(1))
        );
        assert_eq!(failure_location("", None, None), (None, None));
    }
}
