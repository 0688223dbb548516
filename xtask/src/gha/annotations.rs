//! Failures as annotations (`::error file=..,line=..::message`): GitHub
//! shows them on the run's page, and on a pull request's diff when the file
//! is part of it.

use super::markdown::clean;
use crate::junit::Failure;

/// GitHub shows at most this many error annotations per step (and as many
/// warnings); more are dropped, so the rest are named in one warning.
pub const MAX_ERROR_ANNOTATIONS: usize = 10;
/// Lines of an annotation's message.
const ANNOTATION_LINES: usize = 20;

/// Escaping for the data of a workflow command (after the `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a property value of a workflow command (`file=`, `title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error file=tests/test_x.py,line=41,title=...::message`: one failure.
pub fn annotation(f: &Failure) -> String {
    let mut props = Vec::new();
    if let Some(file) = &f.file {
        props.push(format!("file={}", escape_property(file)));
        if let Some(line) = f.line {
            props.push(format!("line={line}"));
        }
    }
    let what = f.kind.word();
    props.push(format!(
        "title={}",
        escape_property(&format!("{what}: {}", f.id))
    ));
    let message = clean(&f.message)
        .lines()
        .take(ANNOTATION_LINES)
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    let message = if message.trim().is_empty() {
        format!("{what} (see the job summary)")
    } else {
        message
    };
    format!("::error {}::{}", props.join(","), escape_data(&message))
}

/// The annotations for a run: one per failure up to GitHub's limit, then one
/// warning that counts the rest.
pub fn annotations(failures: &[Failure]) -> Vec<String> {
    let mut out: Vec<String> = failures
        .iter()
        .take(MAX_ERROR_ANNOTATIONS)
        .map(annotation)
        .collect();
    if failures.len() > MAX_ERROR_ANNOTATIONS {
        let more = failures.len() - MAX_ERROR_ANNOTATIONS;
        out.push(format!(
            "::warning title={}::{}",
            escape_property("more failures"),
            escape_data(&format!(
                "{more} more failures and errors are not annotated: see the job summary"
            ))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::tests::sample;
    use crate::junit::Kind;

    #[test]
    fn escaping_of_workflow_commands() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(
            escape_property("50% a\r\nb: c, d"),
            "50%25 a%0D%0Ab%3A c%2C d"
        );
        // % first: an escape is not escaped twice, nor produced from text.
        assert_eq!(escape_property("%0A"), "%250A");
    }

    #[test]
    fn annotation_of_a_failure() {
        let r = sample();
        assert_eq!(
            annotation(&r.failures[0]),
            "::error file=tests/test_sample.py,line=16,\
             title=failed%3A tests/test_sample.py%3A%3Atest_fails::\
             AssertionError: values: 50%25 off, a,b: c%0Aassert {'a': 2} == {'a': 1}%0A%0A  \
             Differing items:%0A  {'a': 2} != {'a': 1}%0A  Use -v to get more diff"
        );
        assert_eq!(
            annotation(&r.failures[1]),
            "::error file=tests/test_sample.py,line=6,\
             title=error%3A tests/test_sample.py%3A%3Atest_errors::\
             failed on setup with \"RuntimeError: cannot connect to tcp://scheduler:8786\""
        );
        let bare = Failure {
            kind: Kind::Error,
            id: "pytest::internal".into(),
            file: None,
            line: None,
            message: String::new(),
            text: String::new(),
        };
        assert_eq!(
            annotation(&bare),
            "::error title=error%3A pytest%3A%3Ainternal::error (see the job summary)"
        );
    }

    #[test]
    fn at_most_ten_annotations_then_a_count() {
        let f = sample().failures[0].clone();
        let many = vec![f; 13];
        let lines = annotations(&many);
        assert_eq!(lines.len(), 11);
        assert!(lines[..10].iter().all(|l| l.starts_with("::error ")));
        assert_eq!(
            lines[10],
            "::warning title=more failures::3 more failures and errors are not annotated: see the job summary"
        );
        assert_eq!(annotations(&many[..2]).len(), 2);
    }
}
