// SPDX-License-Identifier: GPL-2.0

//! Statistics: the counters `get stat NAME` reports, their names, and the copies of the
//! MMPT, firmware and event models' own counters.

use super::Device;

/// Names of the counters `get stat NAME` reports.
pub const STAT_NAMES: &[&str] = &[
    "commands",
    "doorbells",
    "doorbell-busy",
    "doorbell-not-ready",
    "no-attention",
    "doorbell-asleep",
    "cmd-write32",
    "bad-access",
    "irqs",
    "irqs-delivered",
    "irqs-dropped",
    "irqs-suppressed",
    "spurious-irqs",
    "bg-started",
    "bg-completed",
    "bg-aborted",
    "bg-busy",
    "aborts",
    "unsupported",
    "faults-applied",
    "resets",
    "fault-resets",
    "fault-removals",
    "short-logs",
    "mmpt-parts",
    "mmpt-messages",
    "mmpt-queued",
    "mmpt-inline",
    "mmpt-received",
    "mmpt-aborts",
    "mmpt-rx-aborts",
    "mmpt-refused",
    "fw-parts",
    "fw-images",
    "fw-refused",
    "fw-aborts",
    "fw-idle-drops",
    "fw-verify-failed",
    "fw-activations",
    "tunnels",
    "dead-tunnels",
    "events-logged",
    "events-dropped",
    "events-cleared",
    "event-irqs",
    "mctp-messages",
];

/// Counters, by the names of [`STAT_NAMES`].
#[derive(Clone, Debug, Default)]
pub(super) struct Stats {
    values: Vec<u64>,
}

impl Stats {
    pub(super) fn new() -> Self {
        Self {
            values: vec![0; STAT_NAMES.len()],
        }
    }

    /// The counter `name`.
    fn slot(&mut self, name: &str) -> Option<&mut u64> {
        let i = STAT_NAMES.iter().position(|s| *s == name)?;
        self.values.get_mut(i)
    }

    pub(super) fn add(&mut self, name: &str, n: u64) {
        if let Some(v) = self.slot(name) {
            *v = v.saturating_add(n);
        }
    }

    pub(super) fn inc(&mut self, name: &str) {
        self.add(name, 1);
    }

    /// Sets each counter of `values` (by name) to its value: copies of a model's own counters.
    fn copy(&mut self, values: &[(&str, u64)]) {
        for (name, v) in values {
            if let Some(slot) = self.slot(name) {
                *slot = *v;
            }
        }
    }

    fn get(&self, name: &str) -> Option<u64> {
        let i = STAT_NAMES.iter().position(|s| *s == name)?;
        self.values.get(i).copied()
    }
}

impl Device {
    pub(super) fn sync_mmpt_stats(&mut self, s: crate::mmpt::MmptStats) {
        self.stats.copy(&[
            ("mmpt-parts", s.parts),
            ("mmpt-messages", s.messages),
            ("mmpt-queued", s.queued),
            ("mmpt-inline", s.inline),
            ("mmpt-received", s.received),
            ("mmpt-aborts", s.aborts),
            ("mmpt-rx-aborts", s.rx_aborts),
            ("mmpt-refused", s.refused),
        ]);
    }

    /// Copies the firmware model's counters.
    pub(super) fn sync_fw_stats(&mut self) {
        let s = self.fw.stats;
        self.stats.copy(&[
            ("fw-parts", s.parts),
            ("fw-images", s.images),
            ("fw-refused", s.refused),
            ("fw-aborts", s.aborts),
            ("fw-idle-drops", s.idle_drops),
            ("fw-verify-failed", s.verify_failed),
            ("fw-activations", s.activations),
        ]);
    }

    pub(super) fn sync_event_stats(&mut self) {
        let s = self.ev.stats;
        self.stats.copy(&[
            ("events-logged", s.logged),
            ("events-dropped", s.dropped),
            ("events-cleared", s.cleared),
        ]);
    }

    /// Counter `name`, see [`STAT_NAMES`].
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats.get(name)
    }
}
