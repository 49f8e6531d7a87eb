// SPDX-License-Identifier: GPL-2.0

//! The swcci(1) manual page and shell completions, generated from the clap definitions.

use crate::args::{Cli, CompletionShell};
use crate::error::{CliError, EXIT_CODES};
use clap::{Arg, CommandFactory};
use roff::{bold, italic, roman, Roff};

/// A completion script for `shell`.
pub fn completions(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "swcci", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The swcci(1) manual page in roff: clap_mangen's title, NAME, SYNOPSIS, DESCRIPTION and
/// OPTIONS, then COMMANDS (every command with its synopsis, description, arguments and
/// examples), EXIT STATUS, FILES, SEE ALSO and VERSION.
pub fn man_page() -> Result<String, CliError> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    let io = |err| {
        CliError::Lib(swcci::Error::Os {
            op: "render the manual page".into(),
            err,
        })
    };
    man.render_title(&mut buf).map_err(io)?;
    man.render_name_section(&mut buf).map_err(io)?;
    man.render_synopsis_section(&mut buf).map_err(io)?;
    man.render_description_section(&mut buf).map_err(io)?;
    man.render_options_section(&mut buf).map_err(io)?;
    let mut roff = Roff::default();
    roff.control("SH", ["COMMANDS"]);
    for sub in visible(&cmd) {
        command_section(&mut roff, sub, "swcci");
    }
    exit_status_section(&mut roff);
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic("/dev/cxl/switchN")]);
    roff.text([roman("Switch mailbox CCI nodes of the cxl_swcci driver.")]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("cxl(1), nvme(1), lspci(8)")]);
    buf.extend_from_slice(roff.render().as_bytes());
    man.render_version_section(&mut buf).map_err(io)?;
    Ok(dedupe_preamble(&String::from_utf8_lossy(&buf)))
}

/// Each rendered piece starts with roff's two-line apostrophe preamble; keep the first.
fn dedupe_preamble(page: &str) -> String {
    let mut seen = false;
    let mut out = String::with_capacity(page.len());
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(".ie \\n(.g .ds Aq")
            && lines.peek().is_some_and(|l| l.starts_with(".el .ds Aq"))
        {
            let el = lines.next().unwrap_or_default();
            if seen {
                continue;
            }
            seen = true;
            out.push_str(line);
            out.push('\n');
            out.push_str(el);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn visible(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// One command: `.SS swcci NAME`, usage, description, arguments, examples; then its own
/// subcommands.
fn command_section(roff: &mut Roff, sub: &clap::Command, parent: &str) {
    let name = format!("{parent} {}", sub.get_name());
    roff.control("SS", [name.as_str()]);
    let usage = sub.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    roff.text([bold(usage)]);
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        paragraphs(roff, &about.to_string());
    }
    for arg in sub.get_arguments().filter(|a| documented_here(a)) {
        argument(roff, arg);
    }
    if let Some(after) = sub.get_after_long_help().or_else(|| sub.get_after_help()) {
        roff.control("PP", []);
        roff.control("nf", []);
        for line in after.to_string().lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
    for child in visible(sub) {
        command_section(roff, child, &name);
    }
}

/// Arguments listed under a command: not help, not the global options of the top level.
fn documented_here(a: &Arg) -> bool {
    !a.is_hide_set() && !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

fn paragraphs(roff: &mut Roff, text: &str) {
    for para in text.split("\n\n") {
        roff.control("PP", []);
        roff.text([roman(crate::error::single_line(para))]);
    }
}

/// `.TP` with the argument's flags and value, then its help, values and default.
fn argument(roff: &mut Roff, arg: &Arg) {
    let values: Vec<String> = arg
        .get_value_names()
        .map(|v| v.iter().map(|n| format!("<{n}>")).collect())
        .unwrap_or_default();
    roff.control("TP", []);
    if arg.is_positional() {
        roff.text([italic(values.join(" "))]);
    } else {
        let mut flags = Vec::new();
        if let Some(s) = arg.get_short() {
            flags.push(format!("-{s}"));
        }
        if let Some(l) = arg.get_long() {
            flags.push(format!("--{l}"));
        }
        let mut line = vec![bold(flags.join(", "))];
        if arg.get_num_args().is_some_and(|r| r.takes_values()) {
            line.push(roman(" "));
            line.push(italic(values.join(" ")));
        }
        roff.text(line);
    }
    let mut text = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| crate::error::single_line(&h.to_string()))
        .unwrap_or_default();
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| match p.get_help() {
            Some(h) => format!("{} ({h})", p.get_name()),
            None => p.get_name().to_string(),
        })
        .collect();
    if !possible.is_empty() {
        text.push_str(&format!(". Values: {}", possible.join("; ")));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    let takes_values = arg.get_num_args().is_some_and(|r| r.takes_values());
    if takes_values && !defaults.is_empty() {
        text.push_str(&format!(". Default: {}", defaults.join(",")));
    }
    roff.text([roman(text)]);
}

fn exit_status_section(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_CODES {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*what)]);
    }
    roff.control("PP", []);
    roff.text([roman(
        "Errors are printed on one line on standard error, prefixed with \"swcci: \", \
         naming what was attempted on which device and why.",
    )]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How roff writes `s` (dashes are escaped).
    fn roffed(s: &str) -> String {
        s.replace('-', "\\-")
    }

    #[test]
    fn man_page_has_sections_and_every_command() {
        let man = man_page().unwrap();
        assert!(man.contains("\n.TH swcci 1 "), "{man}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "\"EXIT STATUS\"",
            "FILES",
            "\"SEE ALSO\"",
            "VERSION",
        ] {
            assert!(
                man.contains(&format!(".SH {section}\n")),
                "section {section}"
            );
        }
        let cmd = Cli::command();
        for sub in visible(&cmd) {
            let title = format!(".SS \"swcci {}\"", roffed(sub.get_name()));
            let plain = format!(".SS \"swcci {}\"", sub.get_name());
            assert!(
                man.contains(&title) || man.contains(&plain),
                "{}",
                sub.get_name()
            );
        }
        for nested in ["tunnel identify", "tunnel raw"] {
            assert!(man.contains(&format!(".SS \"swcci {nested}\"")), "{nested}");
        }
        for text in [
            "\\-\\-yes",
            "\\-\\-out\\-size",
            "\\-\\-json",
            "wait\\-link\\-down",
            "ENOENT",
        ] {
            assert!(man.contains(text), "{text}");
        }
        // Every exit status.
        for (code, _) in EXIT_CODES {
            assert!(
                man.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "exit {code}"
            );
        }
        // One apostrophe preamble, at the top.
        assert_eq!(man.matches(".ds Aq \\(aq").count(), 1);
        assert!(man.starts_with(".ie \\n(.g .ds Aq"));
        // Hidden commands are not documented.
        assert!(!man.contains("swcci completions"));
    }

    #[test]
    fn completions_generate() {
        let bash = completions(CompletionShell::Bash);
        assert!(bash.contains("_swcci()"), "{bash}");
        for word in [
            "port-control",
            "switch-info",
            "bg-status",
            "--json",
            "--yes",
        ] {
            assert!(bash.contains(word), "{word}");
        }
        assert!(completions(CompletionShell::Zsh).contains("#compdef swcci"));
        assert!(completions(CompletionShell::Fish).contains("complete -c swcci"));
    }
}
