// SPDX-License-Identifier: GPL-2.0

//! Command payloads: request encoders and response decoders (little-endian, bounds-checked, no
//! allocation). Decoders accept longer payloads than they need (newer spec revisions append
//! fields) and reject shorter ones with the name of the first missing field.

pub mod bg;
pub mod dcd;
pub mod events;
pub mod firmware;
pub mod identify;
pub mod ld;
pub mod logs;
pub mod mctp;
pub mod switch;
pub mod tunnel;
