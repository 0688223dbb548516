//! `cargo xtask completions SHELL`: completions for `cargo xtask …`, the
//! way it is typed. Generated for a `cargo` whose one subcommand is `xtask`,
//! then fitted beside cargo's own completion rather than over it: bash and
//! zsh get a dispatcher that takes `cargo xtask …` and hands everything
//! else to cargo's completion; fish adds completions, so ours only add
//! `xtask` and what follows it.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Completions};

/// The prefix of every name the scripts define, so that none meets a name
/// of cargo's own completion.
const OURS: &str = "_cargo_xtask_ext";

impl Completions {
    pub fn run(self) -> Result<()> {
        let text = script(&self.shell)?;
        crate::outln!("{}", text.trim_end());
        Ok(())
    }
}

/// The completion script for `shell`.
pub fn script(shell: &str) -> Result<String> {
    let generator: clap_complete::Shell = match shell {
        "bash" | "zsh" | "fish" => shell.parse().map_err(anyhow::Error::msg)?,
        other => bail!("no completions for {other:?}: use bash, zsh or fish"),
    };
    let mut cargo = clap::Command::new("cargo")
        .bin_name("cargo")
        .subcommand(Cli::command().name("xtask").bin_name("cargo xtask"));
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut cargo, "cargo", &mut out);
    let text = String::from_utf8(out)?;
    Ok(match shell {
        "bash" => bash(&text),
        "zsh" => zsh(&text),
        _ => fish(&text),
    })
}

/// Our function under its own name, and a dispatcher in front of cargo's.
fn bash(generated: &str) -> String {
    let body: String = generated
        .lines()
        .take_while(|l| !l.starts_with("if [[ \"${BASH_VERSINFO[0]}\""))
        .map(|l| format!("{}\n", l.replacen("_cargo() {", &format!("{OURS}() {{"), 1)))
        .collect();
    format!(
        "{body}
{OURS}_dispatch() {{
    if [[ \"${{COMP_WORDS[1]-}}\" == xtask ]]; then
        {OURS} \"$@\"
        return
    fi
    # cargo's own completion, loaded as bash-completion loads it
    if ! declare -F _cargo >/dev/null && declare -F _completion_loader >/dev/null; then
        _completion_loader cargo >/dev/null 2>&1
        complete -F {OURS}_dispatch -o bashdefault -o default cargo
    fi
    if declare -F _cargo >/dev/null; then
        _cargo \"$@\"
    fi
}}
complete -F {OURS}_dispatch -o bashdefault -o default cargo
"
    )
}

/// Our functions renamed, and a dispatcher registered for `cargo`.
fn zsh(generated: &str) -> String {
    let mut out = String::new();
    for line in generated.lines() {
        if line.starts_with("#compdef") {
            continue;
        }
        if line.starts_with("if [ \"$funcstack[1]\" = \"_cargo\" ]") {
            break;
        }
        out.push_str(&rename_zsh(line));
        out.push('\n');
    }
    out.push_str(&format!(
        "
{OURS}_dispatch() {{
    if [[ \"${{words[2]}}\" == xtask ]]; then
        {OURS} \"$@\"
    else
        _cargo \"$@\"
    fi
}}
compdef {OURS}_dispatch cargo
"
    ));
    out
}

/// `_cargo` and `_cargo__…` (clap's names) as ours; `_cargo_commands` and
/// the like of other scripts are not in the generated text.
fn rename_zsh(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("_cargo") {
        let before = rest[..i].chars().last();
        let after = rest[i + "_cargo".len()..].chars().next();
        let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let ours = word_start && !after.is_some_and(|c| c.is_alphanumeric());
        out.push_str(&rest[..i]);
        out.push_str(if ours { OURS } else { "_cargo" });
        rest = &rest[i + "_cargo".len()..];
    }
    out.push_str(rest);
    out
}

/// fish adds completions to cargo's: keep `xtask` and what follows it,
/// with clap's helper functions renamed, and none of the root's options.
fn fish(generated: &str) -> String {
    let fish_ours = format!("__fish{OURS}");
    generated
        .lines()
        .filter(|l| {
            !l.starts_with("complete -c cargo -n \"__fish_cargo_needs_command\"")
                || l.contains("-a \"xtask\"")
        })
        .map(|l| format!("{}\n", l.replace("__fish_cargo_", &format!("{fish_ours}_"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What bash completes after `words` (the last one being typed).
    fn complete_in_bash(words: &[&str]) -> String {
        let script = script("bash").unwrap();
        let list = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let n = words.len() - 1;
        let probe = format!(
            "{script}\nCOMP_WORDS=({list}); COMP_CWORD={n}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}\n\
             {OURS}_dispatch cargo '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words.join(" "),
            words[n],
            words[n - 1]
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &probe])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn bash_completes_cargo_xtask_as_typed() {
        let subcommands = complete_in_bash(&["cargo", "xtask", "dist-"]);
        assert_eq!(subcommands.trim(), "dist-test", "{subcommands}");
        let options = complete_in_bash(&["cargo", "xtask", "dist-test", "--pyt"]);
        assert_eq!(options.trim(), "--python", "{options}");
        // Not ours: left to cargo's completion (absent here: nothing).
        assert_eq!(complete_in_bash(&["cargo", "bui"]).trim(), "");
    }

    #[test]
    fn zsh_and_fish_leave_cargos_own_names_alone() {
        let zsh = script("zsh").unwrap();
        assert!(!zsh.contains("#compdef"), "not a file for cargo itself");
        assert!(zsh.contains(&format!("compdef {OURS}_dispatch cargo")));
        assert!(zsh.contains("_cargo \"$@\""), "everything else is cargo's");
        assert!(
            !zsh.lines().any(|l| l.starts_with("_cargo()")),
            "cargo's own _cargo is not redefined"
        );
        let fish = script("fish").unwrap();
        assert!(
            fish.contains("-a \"xtask\""),
            "xtask among cargo's subcommands"
        );
        assert!(fish.contains("dist-test"));
        assert!(!fish.contains("function __fish_cargo_needs_command"));
        assert!(matches!(script("tcsh"), Err(e) if e.to_string().contains("bash, zsh or fish")));
    }
}
