//! The workflow's step limits against the xtask's own deadlines: a step
//! that runs `cargo xtask dist-test` must outlast them, or on a hang the
//! runner ends the job before the xtask has kept anything (no summary, no
//! report, no stacks). `check-ci` holds the workflow to it.

/// What a step needs besides the readiness and tests deadlines: the build
/// of an image whose layers are cached, the snapshots at deadlines and the
/// teardown, with room to spare.
pub const BESIDES_MIN: u64 = 10;

/// The least `timeout-minutes` of a step that runs `dist-test`.
pub fn needed_minutes(ready_s: u64, tests_s: u64) -> u64 {
    (ready_s + tests_s).div_ceil(60) + BESIDES_MIN
}

/// Each step of `workflow` that runs `cargo xtask dist-test` with no
/// `timeout-minutes`, or fewer than `needed`, as one line that names it.
pub fn short_steps(workflow: &str, needed: u64) -> Vec<String> {
    let lines: Vec<&str> = workflow.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.trim_start().starts_with("- ") {
            continue;
        }
        let dash = indent(line);
        let body: Vec<&str> = std::iter::once(line.trim_start().trim_start_matches("- "))
            .chain(
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || indent(l) > dash)
                    .copied(),
            )
            .collect();
        // Its command: the `run:` line and what follows it in the step.
        let runs = body
            .iter()
            .position(|l| l.trim().starts_with("run:"))
            .is_some_and(|r| {
                body[r..]
                    .iter()
                    .any(|l| l.contains("cargo xtask dist-test"))
            });
        if !runs {
            continue;
        }
        let name = body
            .iter()
            .find_map(|l| l.trim().strip_prefix("name:"))
            .map_or(String::new(), |n| format!(" ({})", n.trim()));
        let limit = body
            .iter()
            .find_map(|l| l.trim().strip_prefix("timeout-minutes:"))
            .and_then(|m| m.trim().parse::<u64>().ok());
        match limit {
            Some(m) if m >= needed => {}
            Some(m) => found.push(format!(
                "line {}{name}: timeout-minutes {m} is below the xtask's deadlines ({needed})",
                i + 1
            )),
            None => found.push(format!(
                "line {}{name}: no timeout-minutes (at least {needed}, above the xtask's deadlines)",
                i + 1
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOW: &str = "\
jobs:
  a:
    timeout-minutes: 60
    steps:
      - name: check out
        uses: actions/checkout@abc
      - name: dist-test (short)
        timeout-minutes: 15
        run: cargo xtask dist-test --python 3.14
      - name: dist-test (enough)
        timeout-minutes: 45
        run: |
          cargo xtask dist-test
      - name: no limit
        run: cargo xtask dist-test --repeat 3
  b:
    timeout-minutes: 5
    steps:
      - run: cargo xtask doctor
      - name: a step that only names it
        uses: some/action@abc
        with:
          body: `cargo xtask dist-test` passed
";

    #[test]
    fn steps_below_the_deadlines_or_without_a_limit_are_named() {
        assert_eq!(needed_minutes(180, 900), 28);
        let short = short_steps(WORKFLOW, 28);
        assert_eq!(short.len(), 2, "{short:?}");
        assert!(short[0].starts_with("line 7 (dist-test (short)): timeout-minutes 15"));
        assert!(short[1].starts_with("line 14 (no limit): no timeout-minutes"));
    }

    #[test]
    fn the_shipped_workflow_outlasts_the_shipped_deadlines() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let workflow = std::fs::read_to_string(root.join("ci/dist-tests.yml")).unwrap();
        let config = crate::config::Config::load(&root.join("dist-test.toml")).unwrap();
        let t = &config.timeouts;
        let short = short_steps(&workflow, needed_minutes(t.ready_s, t.tests_s));
        assert!(short.is_empty(), "{short:?}");
        assert!(workflow.contains("cargo xtask dist-test"));
    }
}
