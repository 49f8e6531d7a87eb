// SPDX-License-Identifier: GPL-2.0

//! Opening DEV (a driver node or an MCTP endpoint) with this run's MCTP options, for every
//! command module.

use crate::error::CliError;
use std::sync::OnceLock;
use swcci::mctp::{AnyMailbox, MctpOptions};

/// The MCTP options of this run (`--mctp-timeout`, `--mctp-retries`, `--mctp-gap`).
static MCTP_OPTIONS: OnceLock<MctpOptions> = OnceLock::new();

/// Opens what DEV names: a driver node, or an MCTP endpoint (`mctp:[NET:]EID`,
/// `mctp-cci:[NET:]EID`) with this run's MCTP options.
pub fn open(dev: &str) -> Result<AnyMailbox, CliError> {
    let opts = MCTP_OPTIONS.get().cloned().unwrap_or_default();
    Ok(AnyMailbox::open(dev, &opts)?)
}

/// This run's MCTP options, once set.
pub fn mctp_options() -> Option<&'static MctpOptions> {
    MCTP_OPTIONS.get()
}

/// Sets this run's MCTP options (`--mctp-timeout`, `--mctp-retries`, `--mctp-gap`), once,
/// before any DEV is opened.
pub fn set_mctp_options(opts: MctpOptions) {
    let _ = MCTP_OPTIONS.set(opts);
}
