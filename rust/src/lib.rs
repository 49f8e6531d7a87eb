// SPDX-License-Identifier: GPL-2.0

//! Protocol core of swcci: the CXL switch mailbox CCI and PCIe MMB/MMPT protocol, without I/O
//! and without allocation.
//!
//! This crate is compiled twice: as this crate for the host (tools, tests, the device emulator),
//! and as the `proto` module of the `cxl_swcci` kernel module (see `src/cxl_swcci.rs`, which
//! lists the same modules). It is the single source of truth for every register layout, opcode,
//! return code, payload layout and userspace ABI structure.
//!
//! - [`regs`]: register layouts ([`register!`] blocks).
//! - [`discover`]: finding the mailbox through PCI configuration space and capability arrays.
//! - [`mailbox`]: the mailbox engine, generic over register access and waiting.
//! - [`bgtrack`]: which background operation a mailbox runs, and what became of the ones its
//!   callers wait for.
//! - [`rc`], [`opcode`]: return codes and opcodes.
//! - [`payload`]: command payload encoders and decoders.
//! - [`effects`]: which raw commands can change device or fabric state.
//! - [`uapi`]: the ioctl ABI shared with userspace.
//! - [`mmpt`]: Management Message Passthrough messages and transfers.
//! - [`num`]: decimal formatting of 64-bit values that 32-bit ARM kernels can run.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![warn(missing_docs)]

// Keep this list in sync with `src/cxl_swcci.rs`; a test checks that the two agree.
#[macro_use]
mod macros;
pub mod bgtrack;
pub mod discover;
pub mod effects;
pub mod mailbox;
pub mod mmpt;
pub mod num;
pub mod opcode;
pub mod payload;
pub mod rc;
pub mod regs;
pub mod uapi;
pub mod wire;

#[cfg(test)]
mod sim;
