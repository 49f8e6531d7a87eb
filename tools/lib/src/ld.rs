// SPDX-License-Identifier: GPL-2.0

//! LD allocation of a multi-logical device (CXL r3.1 §7.6.7.4): Set LD Allocations (5402h) on
//! any [`Target`] (usually the MLD behind a switch port, through a Tunnel Management Command),
//! and the checked form [`allocate`]: read the device (Get LD Info 5400h, Get LD Allocations
//! 5401h), refuse an allocation that is not a multiple of the device's granularity, names an
//! LD it does not have or, with the other LDs' allocations as they are, exceeds its memory
//! ([`proto::payload::ld::check_ld_allocations`](crate::proto::payload::ld::check_ld_allocations)),
//! send it, and check the device's answer and a read-back.

use crate::dcd::{rc_meaning, Broken, PoolError};
use crate::proto::opcode;
use crate::proto::payload::ld::{
    check_ld_allocations, encode_set_ld_allocations, units_of, Granularity, LdAllocation, LdInfo,
    SetLdAllocations, LD_ALLOCATION_ENTRY, SET_LD_ALLOCATIONS_HEADER,
};
use crate::{command_name, Cci, LdAllocs, Result, Target};

impl Cci<'_> {
    /// Set LD Allocations (5402h), CXL r3.1 §7.6.7.4.3, as given: the allocations of
    /// `list.len()` LDs from LD `start`, in the device's granularity units. Returns the
    /// allocations the device reports after the command (its output: what it could do).
    ///
    /// Errors: those of [`Cci`]; [`crate::Error::Encode`] for a list that does not fit one
    /// payload.
    pub fn set_ld_allocations(
        &self,
        start: u8,
        list: &[LdAllocation],
    ) -> Result<Vec<(u8, LdAllocation)>> {
        let op = opcode::SET_LD_ALLOCATIONS;
        let size = list
            .len()
            .saturating_mul(LD_ALLOCATION_ENTRY)
            .saturating_add(SET_LD_ALLOCATIONS_HEADER);
        let mut input = vec![0u8; size];
        let n = self.encoded(op, encode_set_ld_allocations(&mut input, start, list))?;
        input.truncate(n);
        let out = self.call(op, &input)?;
        let d = self.decoded(op, SetLdAllocations::decode(&out))?;
        Ok(d.iter().collect())
    }
}

/// A multi-logical device as the fabric manager sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mld {
    /// Get LD Info (5400h).
    pub info: LdInfo,
    /// Get LD Allocations (5401h), every LD.
    pub allocs: LdAllocs,
}

impl Mld {
    /// Reads the MLD on `cci`.
    pub fn read(cci: &Cci<'_>) -> Result<Self> {
        Ok(Self {
            info: cci.ld_info()?,
            allocs: cci.ld_allocations()?,
        })
    }

    /// LD `ld`'s allocation, if listed.
    pub fn allocation(&self, ld: u8) -> Option<LdAllocation> {
        self.allocs
            .lds
            .iter()
            .find(|(id, _)| *id == ld)
            .map(|(_, a)| *a)
    }

    /// Bytes allocated to all LDs (`None` for a reserved granularity or an overflow).
    pub fn allocated(&self) -> Option<u64> {
        let g = self.allocs.granularity.bytes()?;
        self.allocs.lds.iter().try_fold(0u64, |s, (_, a)| {
            a.units()
                .and_then(|u| u.checked_mul(g))
                .and_then(|b| s.checked_add(b))
        })
    }
}

/// What [`allocate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocReport {
    /// The target (the MLD).
    pub target: Target,
    /// The LD.
    pub ld: u8,
    /// Its allocation before, in granularity units.
    pub before: LdAllocation,
    /// Its allocation after, as Get LD Allocations reads it back.
    pub after: LdAllocation,
    /// The device's granularity.
    pub granularity: Granularity,
    /// Bytes allocated to all LDs afterwards.
    pub total: u64,
    /// The device's memory size, bytes.
    pub memory: u64,
}

/// Sets LD `ld`'s allocation to `range1` and `range2` bytes (multiples of the device's
/// granularity) on the MLD at `cci`, after the checks above; then reads the allocations back.
///
/// Errors: [`PoolError::Refused`] (nothing sent), the failed command (with what its return
/// code means), or [`PoolError::Unconfirmed`] when the device's answer or the read-back shows
/// another allocation.
pub fn allocate(
    cci: &Cci<'_>,
    ld: u8,
    range1: u64,
    range2: u64,
) -> std::result::Result<AllocReport, PoolError> {
    let op = opcode::SET_LD_ALLOCATIONS;
    let refused = |rule| PoolError::Refused {
        op: cci.op(command_name(op)),
        rule: Broken::Ld(rule),
    };
    let m = Mld::read(cci).map_err(PoolError::failed)?;
    let g = m.allocs.granularity;
    let new = LdAllocation {
        range1: units_of(range1, g).map_err(refused)?,
        range2: units_of(range2, g).map_err(refused)?,
    };
    let total = check_ld_allocations(
        m.info.memory_size,
        m.info.ld_count,
        g,
        &m.allocs.lds,
        ld,
        &[new],
    )
    .map_err(refused)?;
    let before = m.allocation(ld).unwrap_or(LdAllocation {
        range1: 0,
        range2: 0,
    });
    let answer = cci.set_ld_allocations(ld, &[new]).map_err(|error| {
        let meaning = error.rc().and_then(|rc| rc_meaning(op, rc));
        PoolError::Failed {
            error,
            meaning,
            done: 0,
            of: 1,
        }
    })?;
    let unconfirmed = |what: String| PoolError::Unconfirmed {
        op: cci.op(command_name(op)),
        what,
    };
    if answer.first() != Some(&(ld, new)) {
        return Err(unconfirmed(format!(
            "the device answered LD allocations {answer:?} for LD {ld}, asked range 1 {} and \
             range 2 {} units",
            new.range1, new.range2
        )));
    }
    let after = Mld::read(cci).map_err(PoolError::failed)?;
    match after.allocation(ld) {
        Some(a) if a == new => Ok(AllocReport {
            target: cci.target(),
            ld,
            before,
            after: a,
            granularity: g,
            total,
            memory: m.info.memory_size,
        }),
        a => Err(unconfirmed(format!(
            "Get LD Allocations (5401h) reads back {a:?} for LD {ld}, set to range 1 {} and \
             range 2 {} units",
            new.range1, new.range2
        ))),
    }
}

#[cfg(test)]
#[path = "ld_tests.rs"]
mod tests;
