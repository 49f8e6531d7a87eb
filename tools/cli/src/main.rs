// SPDX-License-Identifier: GPL-2.0

//! `swcci`: the command-line tool for CXL switch mailbox CCIs driven by `cxl_swcci`.
//!
//! [`args`] holds the command-line definitions (clap); this file the dispatch and the exit
//! statuses. [`cmd`] runs the commands, [`decode`] turns responses into fields, [`output`]
//! renders them, [`hex`] parses and dumps bytes, and [`doc`] generates the man page and shell
//! completions.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod args;
mod cmd;
mod dcd;
mod decode;
mod dev;
mod doc;
mod error;
mod events;
mod fw;
mod hex;
mod ld;
mod output;
mod topology;
mod units;

use args::{Cli, Command, TunnelCommand};
use clap::Parser;
use dev::open;
use error::{CliError, EXIT_INTERNAL, EXIT_USAGE};
use output::{Outcome, Report};
use std::io::Write;
use swcci::Target;

/// Runs the command line: each command goes to its module, which returns what it printed
/// and the errors after it.
fn run(cli: Cli) -> Result<Outcome, CliError> {
    dev::set_mctp_options(cli.mctp_options());
    let report: Report = match cli.command {
        Command::Completions { shell } => return Ok(Outcome::text(doc::completions(shell))),
        Command::Man => return Ok(Outcome::text(doc::man_page()?)),
        Command::List => cmd::list()?,
        Command::Identify(a) => cmd::identify(&open(&a.dev)?.on(a.target.target()))?.into(),
        Command::SwitchInfo(a) => cmd::switch_info(&open(&a.dev)?.on(Target::Direct))?.into(),
        Command::Ports(a) => cmd::ports(&open(&a.dev)?.on(Target::Direct), &a.ports)?.into(),
        Command::Vcs(a) => {
            cmd::vcs(&open(&a.dev)?.on(Target::Direct), &a.vcs, a.start, a.limit)?.into()
        }
        Command::Cel(a) => cmd::cel(&open(&a.dev)?.on(a.target.target()))?,
        Command::Logs(a) => cmd::logs(&open(&a.dev)?.on(a.target.target()))?.into(),
        Command::BgStatus(a) => cmd::bg_status(&open(&a.dev)?.on(a.target.target()))?.into(),
        Command::Abort(a) => cmd::abort(&open(&a.dev)?.on(a.target.target()))?.into(),
        Command::PortControl(a) => cmd::port_control(&a.dev, a.port, a.action, a.yes)?.into(),
        Command::Bind(a) => cmd::bind(&a.dev, [a.at.vcs, a.at.vppb, a.port], a.ld, a.yes)?.into(),
        Command::Unbind(a) => cmd::unbind(&a.dev, a.at.vcs, a.at.vppb, a.mode, a.yes)?.into(),
        Command::Tunnel(a) => {
            let target = a.target();
            match &a.what {
                TunnelCommand::Identify => cmd::identify(&open(&a.dev)?.on(target))?.into(),
                TunnelCommand::Raw(c) => cmd::raw(&a.dev, target, c)?,
            }
        }
        Command::Raw(a) if a.asynchronous => return cmd::raw_async(&a.dev, &a.cmd, cli.json),
        Command::Raw(a) => cmd::raw(&a.dev, a.target.target(), &a.cmd)?,
        Command::Fw(a) => return fw::run(a, cli.json),
        Command::Dcd(a) => return dcd::run(a, cli.json),
        Command::Ld(a) => return ld::run(a, cli.json),
        Command::Events(a) => return events::run(&a, cli.json),
        Command::Topology(a) => return Ok(cmd::topology(&a, cli.json)),
    };
    Ok(report.outcome(cli.json))
}

/// Reports a command-line error: help and version go to stdout with status 0; anything else
/// is one line on stderr with status 2.
fn clap_failure(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint_line(e.render().to_string().trim_end());
            EXIT_USAGE
        }
        _ => {
            let msg = error::one_line_usage_error(&e.render().to_string());
            eprint_line(&format!("swcci: {msg}"));
            EXIT_USAGE
        }
    }
}

/// Writes one line to stderr; a closed stderr is ignored (never a panic).
fn eprint_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The one-line message for a panic with `payload`.
fn panic_text(payload: &(dyn std::any::Any + Send), at: Option<String>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string());
    let at = at.map(|a| format!(" (at {a})")).unwrap_or_default();
    format!("swcci: internal error: {}{at}", error::single_line(&msg))
}

/// Prints panics as one line and exits with [`EXIT_INTERNAL`] instead of unwinding.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        eprint_line(&panic_text(info.payload(), at));
        std::process::exit(EXIT_INTERNAL);
    }));
}

/// Writes `text` to stdout. A closed pipe (`swcci cel switch0 | head`) is not an error.
fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Lib(swcci::Error::Os {
                op: "write standard output".into(),
                err: e,
            }))
        }
        _ => Ok(()),
    }
}

fn report(e: &CliError) -> i32 {
    eprint_line(&format!("swcci: {e}"));
    e.exit_code()
}

/// Reports every error; the exit status is that of the first (0 for none).
fn report_all(errors: &[CliError]) -> i32 {
    let codes: Vec<i32> = errors.iter().map(report).collect();
    codes.first().copied().unwrap_or(0)
}

fn main() {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(clap_failure(&e)),
    };
    let printed = run(cli).and_then(|o| {
        print_stdout(&o.stdout)?;
        for w in &o.warnings {
            eprint_line(&format!("swcci: warning: {}", error::single_line(w)));
        }
        Ok(o.errors)
    });
    let code = match printed {
        // Everything was printed; then the errors that came with it (the first decides).
        Ok(errors) => report_all(&errors),
        Err(e) => report(&e),
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_one_line() {
        let p: Box<dyn std::any::Any + Send> = Box::new("index out of\nbounds");
        assert_eq!(
            panic_text(p.as_ref(), Some("src/x.rs:3".into())),
            "swcci: internal error: index out of bounds (at src/x.rs:3)"
        );
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("boom"));
        assert_eq!(panic_text(p.as_ref(), None), "swcci: internal error: boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_text(p.as_ref(), None), "swcci: internal error: panic");
    }
}
