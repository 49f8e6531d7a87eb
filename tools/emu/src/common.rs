// SPDX-License-Identifier: GPL-2.0

//! The items the register model (`device`) shares with the models it drives and the parts
//! around it (`fabric.rs`, `devfw.rs`, `knobs.rs`, `mctp.rs`, `control.rs`): the
//! personality, the default interrupt vectors, and how long an armed fault stays armed. It
//! imports nothing of the crate, so that every module can use it without a circle.

/// MSI-X vector of the mailbox interrupts (doorbell and background completion).
pub const MBOX_VECTOR: u16 = 1;
/// MSI-X vector of the MMPT receive interrupt.
pub const MMPT_VECTOR: u16 = 2;

/// Which function the emulator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    /// A CXL switch mailbox CCI (class 0C0B00h) whose mailbox is also a PCIe MMB, with MMPT.
    Switch,
    /// A plain PCIe function with an MMB and MMPT (no class code of its own).
    Mmpt,
}

impl Personality {
    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Mmpt => "mmpt",
        }
    }

    /// Parses the command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "switch" => Some(Self::Switch),
            "mmpt" => Some(Self::Mmpt),
            _ => None,
        }
    }
}

/// How long an armed fault stays armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// For the next command it applies to.
    Once,
    /// Until `clear`.
    Always,
}

impl Mode {
    /// The control protocol name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Always => "always",
        }
    }
}

/// Takes a flag fault for one use: true when it was armed (a once fault disarms).
pub(crate) fn take_flag(slot: &mut Option<Mode>) -> bool {
    match *slot {
        None => false,
        Some(Mode::Once) => {
            *slot = None;
            true
        }
        Some(Mode::Always) => true,
    }
}
