// SPDX-License-Identifier: GPL-2.0

//! Errors of the tool and the exit statuses they map to.

use std::fmt;
use swcci::dcd::PoolError;

/// The device refused the command (non-success return code).
pub const EXIT_DEVICE: i32 = 1;
/// Usage error, or a state-changing command without `--yes`.
pub const EXIT_USAGE: i32 = 2;
/// An operating-system error.
pub const EXIT_OS: i32 = 3;
/// A malformed response.
pub const EXIT_MALFORMED: i32 = 4;
/// A firmware transfer failed or was interrupted, and the device did not confirm its abort.
pub const EXIT_ABORT_UNCONFIRMED: i32 = 5;
/// A command completed but the device does not show its result (firmware: Get FW Info; LD
/// allocation and DC region configuration: the read-back).
pub const EXIT_UNCONFIRMED: i32 = 6;
/// A partial result: some items could not be read (`swcci topology`).
pub const EXIT_PARTIAL: i32 = 7;
/// A firmware transfer was interrupted (SIGINT, SIGTERM) and its abort confirmed.
pub const EXIT_INTERRUPTED: i32 = 130;
/// A bug in swcci (a panic).
pub const EXIT_INTERNAL: i32 = 70;

/// Every exit status and its meaning, for `--help` and the man page.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (0, "success"),
    (
        EXIT_DEVICE,
        "the device refused the command (the message names the CXL return code)",
    ),
    (
        EXIT_USAGE,
        "usage error, or a state-changing command without --yes (nothing was sent)",
    ),
    (
        EXIT_OS,
        "operating-system error (the message names the errno, e.g. ENOENT, EACCES, ENXIO)",
    ),
    (
        EXIT_MALFORMED,
        "malformed response (the message names the field, or what is missing: a CEL)",
    ),
    (
        EXIT_ABORT_UNCONFIRMED,
        "fw: stopped (failure or Ctrl-C), abort not confirmed (see swcci fw abort)",
    ),
    (
        EXIT_UNCONFIRMED,
        "fw: done, but Get FW Info does not show it (ld alloc, dcd configure: the read-back)",
    ),
    (
        EXIT_PARTIAL,
        "partial result: topology could not read some items (each error on stderr)",
    ),
    (EXIT_INTERNAL, "internal error (a bug in swcci)"),
    (
        EXIT_INTERRUPTED,
        "fw update: interrupted (SIGINT/SIGTERM); aborted, the device confirmed it",
    ),
];

/// The `Exit status:` block of `--help`.
pub fn exit_status_help() -> String {
    let mut s = String::from("Exit status:");
    for (code, what) in EXIT_CODES {
        s.push_str(&format!("\n  {code:<3} {what}"));
    }
    s
}

/// What went wrong.
#[derive(Debug)]
pub enum CliError {
    /// An error from the device library: OS error, refusal, malformed response, bad request.
    Lib(swcci::Error),
    /// A state-changing command without `--yes`: what it would have done.
    Refused(String),
    /// An error whose exit status the command chose (firmware update: 1-6, 130).
    Exit {
        /// The exit status.
        code: i32,
        /// The message.
        message: String,
    },
    /// Part of a result that could not be read; the rest was printed.
    Partial(swcci::Error),
}

/// The exit status of a library error.
pub fn lib_exit_code(e: &swcci::Error) -> i32 {
    match e {
        swcci::Error::Os { .. } | swcci::Error::Timeout { .. } => EXIT_OS,
        swcci::Error::Device { .. } => EXIT_DEVICE,
        swcci::Error::Decode { .. } | swcci::Error::Missing { .. } => EXIT_MALFORMED,
        swcci::Error::Encode { .. } | swcci::Error::Argument { .. } => EXIT_USAGE,
    }
}

impl CliError {
    /// The exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Lib(e) => lib_exit_code(e),
            Self::Refused(_) => EXIT_USAGE,
            Self::Exit { code, .. } => *code,
            Self::Partial(_) => EXIT_PARTIAL,
        }
    }
}

impl From<swcci::Error> for CliError {
    fn from(e: swcci::Error) -> Self {
        Self::Lib(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lib(e) | Self::Partial(e) => {
                f.write_str(&single_line(&e.to_string()))?;
                match hint(e) {
                    Some(h) => write!(f, " ({h})"),
                    None => Ok(()),
                }
            }
            Self::Refused(what) => write!(f, "would {what}; add --yes to do it"),
            Self::Exit { message, .. } => f.write_str(&single_line(message)),
        }
    }
}

impl std::error::Error for CliError {}

/// What to do about an error, when the error alone does not say: EPERM from a command (not
/// from opening the node) means the caller lacks CAP_SYS_RAWIO or the kernel is locked down
/// (Documentation/access-control.rst); EACCES from an MCTP endpoint means it lacks CAP_NET_RAW
/// (Documentation/transports.rst).
pub fn hint(e: &swcci::Error) -> Option<&'static str> {
    match e {
        swcci::Error::Os { op, .. }
            if e.errno() == Some(libc::EPERM) && !op.starts_with("open ") =>
        {
            Some(
                "raw commands need CAP_SYS_RAWIO and a kernel that is not locked down: run as \
                 root, or see Documentation/access-control.rst",
            )
        }
        swcci::Error::Os { op, .. }
            if e.errno() == Some(libc::EACCES) && op.contains(" on mctp") =>
        {
            Some(
                "sending MCTP messages needs CAP_NET_RAW: run as root, or see \
                 Documentation/transports.rst",
            )
        }
        swcci::Error::Os { op, .. }
            if e.errno() == Some(libc::EAFNOSUPPORT) && op.contains("AF_MCTP") =>
        {
            Some("this kernel has no MCTP (CONFIG_MCTP)")
        }
        _ => None,
    }
}

/// The CLI error of a failed pooling operation: a broken rule is a usage error (nothing was
/// sent), a failed command has its library error's status (with its hint: EPERM), an
/// unconfirmed result status 6.
pub fn pool_error(e: PoolError) -> CliError {
    let code = match &e {
        PoolError::Refused { .. } => EXIT_USAGE,
        PoolError::Failed { error, .. } => lib_exit_code(error),
        PoolError::Unconfirmed { .. } => EXIT_UNCONFIRMED,
    };
    let message = match e.error().and_then(hint) {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    };
    CliError::Exit { code, message }
}

/// Collapses whitespace runs (newlines included) to single spaces.
pub fn single_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns clap's multi-line error text into one line: the message, then the usage.
pub fn one_line_usage_error(rendered: &str) -> String {
    let mut msg = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
        } else if !line.starts_with("For more information") {
            msg.push(line.strip_prefix("error:").unwrap_or(line).trim());
        }
    }
    let msg = single_line(&msg.join(" "));
    match usage {
        Some(u) => format!("{msg} (usage: {u})"),
        None => format!("{msg} (see --help)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swcci_proto::rc::ReturnCode;

    #[test]
    fn exit_codes() {
        let os = CliError::from(swcci::Error::Os {
            op: "open /dev/cxl/switch9".into(),
            err: std::io::Error::from_raw_os_error(libc::ENOENT),
        });
        assert_eq!(os.exit_code(), EXIT_OS);
        assert_eq!(
            os.to_string(),
            "open /dev/cxl/switch9: ENOENT (No such file or directory)"
        );
        let dev = CliError::from(swcci::Error::Device {
            op: "Identify (0001h) on /dev/cxl/switch0".into(),
            rc: ReturnCode::InvalidInput,
        });
        assert_eq!(dev.exit_code(), EXIT_DEVICE);
        assert_eq!(
            dev.to_string(),
            "Identify (0001h) on /dev/cxl/switch0: device returned invalid input (02h)"
        );
        let bad = CliError::from(swcci::Error::Decode {
            op: "Identify (0001h) on x".into(),
            err: swcci_proto::wire::DecodeError::Truncated {
                field: "serial",
                offset: 8,
                need: 8,
                have: 12,
            },
        });
        assert_eq!(bad.exit_code(), EXIT_MALFORMED);
        assert!(bad.to_string().contains("field `serial`"));
        let enc = CliError::from(swcci::Error::Encode {
            op: "x".into(),
            err: swcci_proto::wire::EncodeError::Invalid { what: "payload" },
        });
        assert_eq!(enc.exit_code(), EXIT_USAGE);
        let refused = CliError::Refused("reset port 3 on switch0".into());
        assert_eq!(refused.exit_code(), EXIT_USAGE);
        assert_eq!(
            refused.to_string(),
            "would reset port 3 on switch0; add --yes to do it"
        );
        let no_cel = CliError::from(swcci::Error::Missing {
            op: "Get Supported Logs (0400h) on x".into(),
            what: "no Command Effects Log listed",
        });
        assert_eq!(no_cel.exit_code(), EXIT_MALFORMED);
        let multi = CliError::from(swcci::Error::Os {
            op: "a\nb".into(),
            err: std::io::Error::from_raw_os_error(libc::EIO),
        });
        assert!(multi.to_string().starts_with("a b: EIO"), "{multi}");
        let eperm = |op: &str| {
            CliError::from(swcci::Error::Os {
                op: op.into(),
                err: std::io::Error::from_raw_os_error(libc::EPERM),
            })
        };
        let no_cap = eperm("Identify (0001h) on /dev/cxl/switch0");
        assert_eq!(no_cap.exit_code(), EXIT_OS);
        assert_eq!(
            no_cap.to_string(),
            "Identify (0001h) on /dev/cxl/switch0: EPERM (Operation not permitted) (raw \
             commands need CAP_SYS_RAWIO and a kernel that is not locked down: run as root, or \
             see Documentation/access-control.rst)"
        );
        assert!(CliError::Partial(swcci::Error::Os {
            op: "Identify (0001h) on x".into(),
            err: std::io::Error::from_raw_os_error(libc::EPERM),
        })
        .to_string()
        .contains("CAP_SYS_RAWIO"));
        // Opening the node is not a command.
        assert!(!eperm("open /dev/cxl/switch0")
            .to_string()
            .contains("CAP_SYS_RAWIO"));
    }

    #[test]
    fn help_lists_every_status() {
        let help = exit_status_help();
        assert_eq!(help.lines().count(), EXIT_CODES.len() + 1);
        assert!(help.contains("\n  70  internal error"));
    }

    #[test]
    fn clap_errors_become_one_line() {
        let missing = "error: the following required arguments were not provided:\n  \
                       --opcode <OPCODE>\n\nUsage: swcci raw --opcode <OPCODE> <DEV>\n\n\
                       For more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error(missing),
            "the following required arguments were not provided: --opcode <OPCODE> \
             (usage: swcci raw --opcode <OPCODE> <DEV>)"
        );
        let invalid = "error: invalid value 'zz' for '--opcode <OPCODE>': bad\n\n\
                       For more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error(invalid),
            "invalid value 'zz' for '--opcode <OPCODE>': bad (see --help)"
        );
    }

    #[test]
    fn mctp_hints() {
        let e = swcci::Error::Os {
            op: "Identify (0001h) on mctp:1:9".into(),
            err: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert!(hint(&e).unwrap().contains("CAP_NET_RAW"));
        assert_eq!(CliError::from(e).exit_code(), EXIT_OS);
        let e = swcci::Error::Os {
            op: "open an AF_MCTP socket for mctp:1:9".into(),
            err: std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
        };
        assert!(hint(&e).unwrap().contains("CONFIG_MCTP"));
        // A node's EACCES is the file mode's, not MCTP's.
        let e = swcci::Error::Os {
            op: "open /dev/cxl/switch0".into(),
            err: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(hint(&e), None);
    }

    #[test]
    fn pool_errors_have_their_exit_status() {
        use swcci::dcd::Broken;
        use swcci::proto::payload::dcd::Rule;
        let e = pool_error(PoolError::Refused {
            op: "Initiate Dynamic Capacity Add (5604h) via port 0 on x".into(),
            rule: Broken::Dcd(Rule::NoSuchHost { host: 1, hosts: 1 }),
        });
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert!(e.to_string().contains("not sent: host 1"), "{e}");
        let e = pool_error(PoolError::failed(swcci::Error::Device {
            op: "Initiate Dynamic Capacity Add (5604h) via port 0 on x".into(),
            rc: swcci::proto::rc::ReturnCode::InvalidExtentList,
        }));
        assert_eq!(e.exit_code(), EXIT_DEVICE);
        assert!(e.to_string().contains("(1eh): the extents overlap"), "{e}");
        let e = pool_error(PoolError::failed(swcci::Error::Os {
            op: "Get DCD Info (5600h) via port 0 on x".into(),
            err: std::io::Error::from_raw_os_error(libc::EPERM),
        }));
        assert!(e.to_string().contains("CAP_SYS_RAWIO"), "{e}");
        let e = pool_error(PoolError::Unconfirmed {
            op: "x".into(),
            what: "y".into(),
        });
        assert_eq!(e.exit_code(), EXIT_UNCONFIRMED);
    }
}
