//! The tests container's pytest command line.

/// The tests container's command: LiberTEM's dist suite, `pytest tests/ -m
/// dist`, with the run's own options and the user's arguments after them.
/// When the user names test paths (`tests/io/datasets/test_raw.py`,
/// `tests/test_ipython.py::test_sum_on_dist`), those replace `tests/`, as
/// with pytest itself, so that pytest collects only them; `-m dist` stays.
pub fn pytest_command(pytest_args: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = ["pytest"].map(String::from).to_vec();
    if !names_test_paths(pytest_args) {
        cmd.push("tests/".into());
    }
    cmd.extend(
        [
            "-m",
            "dist",
            "-p",
            "no:cacheprovider",
            "-p",
            "dist_test_harness",
            "-p",
            "dist_test_ready",
            "--junitxml=/results/junit.xml",
            // xunit1 gives every test case its file and line (annotations).
            "-o",
            "junit_family=xunit1",
        ]
        .map(String::from),
    );
    cmd.extend(pytest_args.iter().cloned());
    cmd
}

/// pytest's common options that take no value: a path after them is a
/// positional argument. After any other option it may be the option's value.
const FLAGS: &[&str] = &[
    "-x",
    "-v",
    "-vv",
    "-q",
    "-s",
    "-l",
    "-ra",
    "--exitfirst",
    "--verbose",
    "--quiet",
    "--lf",
    "--last-failed",
    "--ff",
    "--failed-first",
    "--nf",
    "--sw",
    "--pdb",
];

/// Whether an argument is a test path under `tests/` given to pytest as a
/// positional argument (not the value of an option such as `--deselect`).
fn names_test_paths(args: &[String]) -> bool {
    let mut previous: Option<&str> = None;
    for a in args {
        let after_option =
            previous.is_some_and(|p| p.starts_with('-') && !p.contains('=') && !FLAGS.contains(&p));
        if a.starts_with("tests/") && !after_option {
            return true;
        }
        previous = Some(a);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn named_test_paths_replace_the_suite() {
        let whole = pytest_command(&strings(&["-k", "raw", "-x"]));
        assert_eq!(whole[..4], strings(&["pytest", "tests/", "-m", "dist"])[..]);
        assert_eq!(whole[whole.len() - 3..], strings(&["-k", "raw", "-x"])[..]);
        let one = pytest_command(&strings(&["tests/test_ipython.py::test_sum_on_dist"]));
        assert_eq!(one[..3], strings(&["pytest", "-m", "dist"])[..]);
        assert_eq!(
            one.last().unwrap(),
            "tests/test_ipython.py::test_sum_on_dist"
        );
        // A path that is an option's value is not a test path.
        for args in [
            ["--deselect", "tests/test_ipython.py::test_sum_on_dist"],
            ["--ignore", "tests/io"],
        ] {
            let c = pytest_command(&strings(&args));
            assert_eq!(c[1], "tests/", "{args:?}");
        }
        let c = pytest_command(&strings(&["--ignore=tests/io", "-x", "tests/test_raw.py"]));
        assert!(!c.contains(&"tests/".to_string()), "{c:?}");
    }
}
