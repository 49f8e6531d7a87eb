// SPDX-License-Identifier: GPL-2.0

//! LD allocation against a small stateful MLD (Get LD Info, Get LD Allocations, Set LD
//! Allocations on its own CCI), written from the specification's layouts.

use super::*;
use crate::dcd::Broken;
use crate::proto::payload::ld::LdRule;
use crate::proto::rc::ReturnCode;
use crate::{Mailbox, RawResponse};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const UNIT: u64 = 256 << 20;

/// An MLD of `lds` LDs and `units` × 256 MiB, each LD's (range 1, range 2) in units.
struct Mld2 {
    path: PathBuf,
    units: u64,
    alloc: Mutex<Vec<(u64, u64)>>,
    /// Set LD Allocations answers with this instead of what it set (a device that lies).
    lie: Option<(u64, u64)>,
    sent: Mutex<Vec<u16>>,
}

impl Mld2 {
    fn new(lds: usize, units: u64) -> Self {
        Self {
            path: PathBuf::from("/dev/cxl/switch0"),
            units,
            alloc: Mutex::new(vec![(units / lds as u64, 0); lds]),
            lie: None,
            sent: Mutex::new(Vec::new()),
        }
    }
}

impl Mailbox for Mld2 {
    fn send(&self, op: u16, input: &[u8], _: usize) -> crate::Result<RawResponse> {
        self.sent.lock().unwrap().push(op);
        let mut a = self.alloc.lock().unwrap();
        let entry = |b: &mut Vec<u8>, (r1, r2): (u64, u64)| {
            b.extend_from_slice(&r1.to_le_bytes());
            b.extend_from_slice(&r2.to_le_bytes());
        };
        let (rc, out) = match op {
            0x5400 => {
                let mut b = (self.units * UNIT).to_le_bytes().to_vec();
                b.extend_from_slice(&(a.len() as u16).to_le_bytes());
                b.push(0);
                (0, b)
            }
            0x5401 => {
                let (start, limit) = (usize::from(input[0]), usize::from(input[1]));
                let list: Vec<_> = a.iter().skip(start).take(limit).copied().collect();
                let mut b = vec![a.len() as u8, 0, start as u8, list.len() as u8];
                for e in list {
                    entry(&mut b, e);
                }
                (0, b)
            }
            0x5402 => {
                let (n, start) = (usize::from(input[0]), usize::from(input[1]));
                if start + n > a.len() {
                    (2, Vec::new())
                } else {
                    let mut b = vec![n as u8, start as u8, 0, 0];
                    for i in 0..n {
                        let at = 4 + 16 * i;
                        let r1 = u64::from_le_bytes(input[at..at + 8].try_into().unwrap());
                        let r2 = u64::from_le_bytes(input[at + 8..at + 16].try_into().unwrap());
                        a[start + i] = (r1, r2);
                        entry(&mut b, self.lie.unwrap_or((r1, r2)));
                    }
                    (0, b)
                }
            }
            _ => (3, Vec::new()),
        };
        Ok(RawResponse {
            rc: ReturnCode::from_raw(rc),
            out,
        })
    }
    fn payload_size(&self) -> crate::Result<usize> {
        Ok(256)
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

#[test]
fn allocations_set_and_read_back() {
    let m = Mld2::new(4, 16);
    let c = Cci::new(&m, Target::Direct);
    let before = Mld::read(&c).unwrap();
    assert_eq!(before.allocated(), Some(16 * UNIT));
    assert_eq!(
        before.allocation(1),
        Some(LdAllocation {
            range1: 4,
            range2: 0
        })
    );
    // Shrink LD 1, then give LD 0 what was freed, in both ranges.
    let r = allocate(&c, 1, UNIT, 0).unwrap();
    assert_eq!((r.ld, r.before.range1, r.after.range1), (1, 4, 1));
    assert_eq!((r.total, r.memory), (13 * UNIT, 16 * UNIT));
    let r = allocate(&c, 0, 5 * UNIT, 2 * UNIT).unwrap();
    assert_eq!(
        r.after,
        LdAllocation {
            range1: 5,
            range2: 2
        }
    );
    assert_eq!(r.total, 16 * UNIT);
    assert_eq!(*m.alloc.lock().unwrap(), [(5, 2), (1, 0), (4, 0), (4, 0)]);
}

#[test]
fn allocations_that_break_a_rule_are_not_sent() {
    let m = Mld2::new(4, 16);
    let c = Cci::new(&m, Target::Direct);
    let refused = |ld, r1, r2| {
        let e = allocate(&c, ld, r1, r2).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Set LD Allocations (5402h) on /dev/cxl/switch0: not sent: "),
            "{e}"
        );
        assert!(!m.sent.lock().unwrap().contains(&0x5402));
        match e.rule() {
            Some(Broken::Ld(r)) => r,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused(0, 5 * UNIT, 0),
        LdRule::ExceedsDevice {
            total: 17 * UNIT,
            memory: 16 * UNIT
        }
    );
    assert_eq!(
        refused(0, 100 << 20, 0),
        LdRule::NotGranular {
            bytes: 100 << 20,
            granularity: UNIT
        }
    );
    assert_eq!(
        refused(4, 0, 0),
        LdRule::NoSuchLd {
            start: 4,
            count: 1,
            lds: 4
        }
    );
}

#[test]
fn a_device_that_does_not_do_what_it_says_is_unconfirmed() {
    let mut m = Mld2::new(2, 8);
    m.lie = Some((3, 0));
    let c = Cci::new(&m, Target::Direct);
    let e = allocate(&c, 1, 2 * UNIT, 0).unwrap_err();
    assert!(matches!(e, PoolError::Unconfirmed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("asked range 1 2 and range 2 0 units"),
        "{e}"
    );
    // The raw command returns what the device answered.
    assert_eq!(
        c.set_ld_allocations(
            0,
            &[LdAllocation {
                range1: 1,
                range2: 1
            }]
        )
        .unwrap(),
        [(
            0,
            LdAllocation {
                range1: 3,
                range2: 0
            }
        )]
    );
    // A refusal carries its meaning.
    let m = Mld2::new(2, 8);
    let c = Cci::new(&m, Target::Direct);
    let e = c
        .set_ld_allocations(
            1,
            &[LdAllocation {
                range1: 1,
                range2: 0,
            }; 2],
        )
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
}
