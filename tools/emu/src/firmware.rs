// SPDX-License-Identifier: GPL-2.0

//! The firmware of the switch personality and of the devices behind its ports: 2-4 slots, Get
//! FW Info (0200h), Transfer FW (0201h) and Activate FW (0202h), CXL r3.1 §8.2.9.3, with the
//! payload layouts of `swcci_proto::payload::firmware`. Pure logic, one model instantiated per
//! device: the register model in `device/` runs the background part of the switch's own
//! commands (its timing, Request Abort, interrupts), `devfw.rs` that of each device behind a
//! port (reached through Tunnel Management Commands), and both call back here when it ends.
//!
//! Rules (return codes of CXL r3.1 Table 8-34):
//! - Slots are numbered 1..=N (N = `--fw-slots`, 2..=4). Slot 1 holds a built-in image
//!   ([`builtin_image`]; revision [`BUILTIN_REVISION`] on the switch, [`TYPE3_REVISION`] and
//!   [`MLD_REVISION`] on the devices behind its ports) and is active at start; the others are
//!   empty. A slot made read-only (`set fw-ro-slot K`) cannot be written.
//! - Image format (what the tests build): the first [`REVISION_LEN`] (16) bytes are the
//!   image's revision, printable ASCII (20h-7Eh) padded with NULs (after the first NUL only
//!   NULs); the rest is opaque. An image shorter than 16 bytes, or with other bytes there,
//!   fails verification (0Ah) at End / Full. Images are at most [`MAX_IMAGE`] bytes.
//! - Transfer FW input: the 128-byte header, then the data; shorter: Invalid Payload Length
//!   (16h). Offsets are in 128-byte units.
//!   - Full: the whole image, stored in the slot named. While a transfer is open: FW Transfer
//!     in Progress (08h).
//!   - Initiate: the first part, offset 0 (else Invalid Input 02h); opens the transfer. While
//!     one is open: 08h.
//!   - Continue: the part at the offset where the image ends so far, or a resend of the
//!     previous part (same offset), which replaces it; anything else, or no open transfer:
//!     FW Transfer Out of Order (09h), and the transfer stays as it was.
//!   - Initiate and Continue parts are a non-zero multiple of 128 bytes (else 02h), so that
//!     the next offset can be expressed; End and Full may have any length.
//!   - End: the last part (same offset rules as Continue, may be empty) and the slot to store
//!     the image in; the image is verified, stored, and the transfer closes. Verification
//!     failure (the `fw-auth-fail` fault or a bad revision field): 0Ah, the transfer is
//!     dropped, the slot unchanged.
//!   - Full and End name a slot: 0, above N, the active slot or the read-only slot: Invalid
//!     Slot (0Bh), the transfer stays open. Writing the slot staged for the next reset
//!     unstages it.
//!   - Abort: drops the open transfer and stops a part still running (its background
//!     operation ends with Aborted, 12h); Success, also with nothing open.
//!   - Every other action completes in the background (01h, then Background Operation
//!     Status) after `BASE + PER_KIB * bytes / 1024` microseconds (`set fw-part-us`). While
//!     any background operation runs: Busy (06h). Request Abort Background Operation (0005h)
//!     stops a running part: the part is not stored (an Initiate part: nothing is open; a
//!     Continue or End part: the transfer stays open and the part may be resent).
//!   - An open transfer that receives no part for `fw-idle-ms` milliseconds (default 30000,
//!     0: never) is dropped, as the specification allows a device to abort a transfer that
//!     stalls; its next part gets 09h.
//! - Activate FW input: action (0 online, 1 on the next cold reset) and slot; any other
//!   length: 16h, another action: 02h. A slot 0, above N, empty, or the active one: 0Bh.
//!   While a transfer is open: 08h. Online activation completes in the background after
//!   `fw-activate-ms` (default 20; 0: at once); the `fw-activate-fail` fault makes it fail
//!   with Activation Failed, FW Rolled Back (0Ch) and `fw-cold-reset` with Cold Reset Required
//!   (0Dh), the active slot unchanged. On-reset activation stages the slot; every function
//!   reset (the control channel's `reset`, an FLR, the vfio-user reset) is the cold reset
//!   that makes it active. A function reset also drops an open transfer (no partial image).

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;
use swcci_proto::payload::firmware::{
    Activate, ActivateAction, FwInfo, Transfer, TransferAction, FW_INFO_LEN, MAX_SLOTS,
    OFFSET_UNIT, REVISION_LEN, TRANSFER_HEADER_LEN,
};
use swcci_proto::rc::ReturnCode;

/// Revision of the switch's built-in image in slot 1.
pub const BUILTIN_REVISION: &str = "swcci-emu 1.0";
/// Revision of the built-in image of a type-3 device behind a port.
pub const TYPE3_REVISION: &str = "swcci-t3 1.0";
/// Revision of the built-in image of the multi-logical device.
pub const MLD_REVISION: &str = "swcci-mld 1.0";
/// Largest image a slot takes.
pub const MAX_IMAGE: usize = 32 << 20;
/// Fewest and most slots.
pub const SLOTS: std::ops::RangeInclusive<u8> = 2..=MAX_SLOTS;
/// Default number of slots.
pub const DEFAULT_SLOTS: u8 = 3;

/// The image slot 1 holds at start: the revision field of `revision` (at most 16 printable
/// ASCII bytes), then 112 bytes of a fixed pattern.
pub fn builtin_image(revision: &str) -> Vec<u8> {
    let mut img = swcci_proto::payload::firmware::revision_field(revision).to_vec();
    img.extend((0..112u32).map(|i| (i * 37 + 11) as u8));
    img
}

/// The revision field of `image` if it is a valid one (see the module documentation).
pub fn image_revision(image: &[u8]) -> Option<[u8; REVISION_LEN]> {
    let field: [u8; REVISION_LEN] = image.get(..REVISION_LEN)?.try_into().ok()?;
    let text_end = field.iter().position(|&b| b == 0).unwrap_or(REVISION_LEN);
    let (text, pad) = field.split_at(text_end);
    let ok = text.iter().all(|b| (0x20..=0x7e).contains(b)) && pad.iter().all(|&b| b == 0);
    ok.then_some(field)
}

/// Timing settings of the control channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwSettings {
    /// Fixed time of a Transfer FW part, microseconds.
    pub part_base_us: u64,
    /// Time per KiB of a Transfer FW part, microseconds.
    pub part_per_kib_us: u64,
    /// Idle time after which an open transfer is dropped, ms (0: never).
    pub idle_ms: u64,
    /// Time of an online activation, ms (0: completes at once).
    pub activate_ms: u64,
    /// The read-only slot (0: none).
    pub ro_slot: u8,
}

impl Default for FwSettings {
    fn default() -> Self {
        Self {
            part_base_us: 500,
            part_per_kib_us: 100,
            idle_ms: 30_000,
            activate_ms: 20,
            ro_slot: 0,
        }
    }
}

/// Faults of the firmware commands. The device keeps them armed; a command takes one (uses it
/// up when armed `once`) only where it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwFault {
    /// The next Transfer FW returns Busy (06h).
    Busy,
    /// The next Transfer FW part (any action but Abort) is refused with 09h.
    OutOfOrder,
    /// The next End or Full fails verification (0Ah).
    AuthFail,
    /// The next activation fails with Activation Failed, FW Rolled Back (0Ch).
    ActivateFail,
    /// The next activation fails with Cold Reset Required (0Dh).
    ColdReset,
}

impl FwFault {
    /// Every firmware fault, in the order `get faults` lists them.
    pub const ALL: [Self; 5] = [
        Self::Busy,
        Self::OutOfOrder,
        Self::AuthFail,
        Self::ActivateFail,
        Self::ColdReset,
    ];

    /// The control protocol name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Busy => "fw-busy",
            Self::OutOfOrder => "fw-out-of-order",
            Self::AuthFail => "fw-auth-fail",
            Self::ActivateFail => "fw-activate-fail",
            Self::ColdReset => "fw-cold-reset",
        }
    }

    /// The fault of a control protocol name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Takes an armed firmware fault: true when it was armed (and applies to this command).
pub type TakeFault<'a> = &'a mut dyn FnMut(FwFault) -> bool;

/// An open multi-part transfer.
#[derive(Clone, Debug)]
struct Xfer {
    buf: Vec<u8>,
    /// Byte offset of the last part stored, for resends.
    last_offset: usize,
    /// When the last part was stored (or the transfer opened).
    last_activity: Duration,
    parts: u32,
}

/// What a running background operation will do when it ends.
#[derive(Clone, Debug)]
enum Running {
    Part {
        action: TransferAction,
        slot: u8,
        offset: usize,
        data: Vec<u8>,
        auth_fail: bool,
    },
    Activate {
        slot: u8,
        fail: Option<ReturnCode>,
    },
}

/// How a command ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FwOutcome {
    /// Completes now with this return code and output.
    Done(ReturnCode, Vec<u8>),
    /// Starts a background operation of this duration (return code 01h).
    Background(Duration),
    /// Completes now with success, and the running background operation (a Transfer FW
    /// part) ends with Aborted.
    StopBackground,
}

impl FwOutcome {
    fn rc(rc: ReturnCode) -> Self {
        Self::Done(rc, Vec::new())
    }
}

/// Counters, by name, as `get stat` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwStats {
    /// Transfer FW parts stored (Full counts as one).
    pub parts: u64,
    /// Images stored in a slot.
    pub images: u64,
    /// Transfer FW commands refused (any error return code).
    pub refused: u64,
    /// Transfers dropped or parts stopped, once per event (the Abort action, Request Abort
    /// of a part, an idle drop, a reset).
    pub aborts: u64,
    /// Transfers dropped for idleness.
    pub idle_drops: u64,
    /// Images that failed verification.
    pub verify_failed: u64,
    /// Activations that took effect (online or at a reset).
    pub activations: u64,
}

/// An image stored in a slot, with its hash (computed once, when it is stored).
#[derive(Clone, Debug)]
struct Image {
    data: Vec<u8>,
    sha256: String,
}

impl Image {
    fn new(data: Vec<u8>) -> Self {
        let sha256 = hex(&Sha256::digest(&data));
        Self { data, sha256 }
    }
}

/// The firmware state.
#[derive(Clone, Debug)]
pub struct Firmware {
    images: Vec<Option<Image>>,
    active: u8,
    staged: u8,
    xfer: Option<Xfer>,
    running: Option<Running>,
    /// Settings.
    pub settings: FwSettings,
    /// Counters.
    pub stats: FwStats,
    events: Vec<String>,
}

/// Where a slot stands, for the control channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// Image length in bytes (0: empty).
    pub len: usize,
    /// SHA-256 of the image, lowercase hex; `None` for an empty slot.
    pub sha256: Option<String>,
    /// Revision text.
    pub rev: String,
    /// Active.
    pub active: bool,
    /// Staged for the next reset.
    pub staged: bool,
    /// Read-only.
    pub read_only: bool,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A revision field as text: up to the first NUL.
pub fn revision_text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(field.get(..end).unwrap_or(&[])).into_owned()
}

impl Firmware {
    /// The switch's firmware: `slots` slots (clamped to 2..=4), slot 1 active with the
    /// built-in image of revision [`BUILTIN_REVISION`].
    pub fn new(slots: u8) -> Self {
        Self::with_revision(slots, BUILTIN_REVISION)
    }

    /// `slots` slots (clamped to 2..=4), slot 1 active with the built-in image of `revision`.
    pub fn with_revision(slots: u8, revision: &str) -> Self {
        let n = slots.clamp(*SLOTS.start(), *SLOTS.end());
        let mut images = vec![None; usize::from(n)];
        if let Some(s) = images.first_mut() {
            *s = Some(Image::new(builtin_image(revision)));
        }
        Self {
            images,
            active: 1,
            staged: 0,
            xfer: None,
            running: None,
            settings: FwSettings::default(),
            stats: FwStats::default(),
            events: Vec::new(),
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> u8 {
        self.images.len() as u8
    }

    /// The active slot.
    pub fn active(&self) -> u8 {
        self.active
    }

    /// The slot staged for the next reset (0: none).
    pub fn staged(&self) -> u8 {
        self.staged
    }

    /// Bytes received by the open transfer, `None` when none is open.
    pub fn transfer(&self) -> Option<(usize, u32)> {
        self.xfer.as_ref().map(|x| (x.buf.len(), x.parts))
    }

    /// Takes the notable events since the last call.
    pub fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    fn image(&self, slot: u8) -> Option<&Image> {
        self.images
            .get(usize::from(slot).checked_sub(1)?)
            .and_then(Option::as_ref)
    }

    /// The view of `slot` (1-based), `None` for a slot the device does not have.
    pub fn slot(&self, slot: u8) -> Option<SlotView> {
        let cell = self.images.get(usize::from(slot).checked_sub(1)?)?;
        let (len, sha256, rev) = match cell {
            Some(img) => (
                img.data.len(),
                Some(img.sha256.clone()),
                revision_text(img.data.get(..REVISION_LEN).unwrap_or(&[])),
            ),
            None => (0, None, String::new()),
        };
        Some(SlotView {
            len,
            sha256,
            rev,
            active: slot == self.active,
            staged: slot == self.staged,
            read_only: slot == self.settings.ro_slot,
        })
    }

    /// The slots as JSON, in the schema of `--describe-json` (README): `{"slots": [{"slot",
    /// "len", "sha256", "revision", "active", "staged", "read_only"}]}`.
    pub fn describe(&self) -> serde_json::Value {
        let slots: Vec<serde_json::Value> = (1..=self.slots())
            .filter_map(|k| Some((k, self.slot(k)?)))
            .map(|(k, s)| {
                serde_json::json!({
                    "slot": k,
                    "len": s.len,
                    "sha256": s.sha256,
                    "revision": s.rev,
                    "active": s.active,
                    "staged": s.staged,
                    "read_only": s.read_only,
                })
            })
            .collect();
        serde_json::json!({ "slots": slots })
    }

    /// Get FW Info (0200h).
    pub fn info(&self) -> FwOutcome {
        let mut revisions = [[0u8; REVISION_LEN]; MAX_SLOTS as usize];
        for (rev, img) in revisions.iter_mut().zip(&self.images) {
            if let Some(r) = img.as_ref().and_then(|i| image_revision(&i.data)) {
                *rev = r;
            }
        }
        let info = FwInfo {
            slots_supported: self.slots(),
            active_slot: self.active,
            staged_slot: self.staged,
            online_activation: true,
            revisions,
        };
        let mut out = vec![0u8; FW_INFO_LEN];
        match info.encode(&mut out) {
            Ok(n) => {
                out.truncate(n);
                FwOutcome::Done(ReturnCode::Success, out)
            }
            Err(_) => FwOutcome::rc(ReturnCode::InternalError),
        }
    }

    fn part_time(&self, bytes: usize) -> Duration {
        let per = self.settings.part_per_kib_us.saturating_mul(bytes as u64) / 1024;
        Duration::from_micros(self.settings.part_base_us.saturating_add(per))
    }

    /// Whether `slot` may receive an image.
    fn writable(&self, slot: u8) -> bool {
        (1..=self.slots()).contains(&slot) && slot != self.active && slot != self.settings.ro_slot
    }

    fn refuse(&mut self, rc: ReturnCode, why: &str) -> FwOutcome {
        self.stats.refused = self.stats.refused.saturating_add(1);
        self.events
            .push(format!("Transfer FW refused: {why} (rc {:04x}h)", rc.raw()));
        FwOutcome::rc(rc)
    }

    /// Drops the open transfer if it has been idle too long.
    pub fn tick(&mut self, now: Duration) {
        let idle = self.settings.idle_ms;
        let stale = self.xfer.as_ref().is_some_and(|x| {
            idle > 0
                && self.running.is_none()
                && now.saturating_sub(x.last_activity) > Duration::from_millis(idle)
        });
        if stale {
            self.xfer = None;
            self.stats.idle_drops = self.stats.idle_drops.saturating_add(1);
            self.stats.aborts = self.stats.aborts.saturating_add(1);
            self.events
                .push(format!("FW transfer dropped: no part for {idle} ms"));
        }
    }

    /// Transfer FW (0201h). `bg_busy`: a background operation is running; `take`: takes an
    /// armed fault.
    pub fn transfer_cmd(
        &mut self,
        now: Duration,
        input: &[u8],
        bg_busy: bool,
        take: TakeFault<'_>,
    ) -> FwOutcome {
        self.tick(now);
        if input.len() < TRANSFER_HEADER_LEN {
            return self.refuse(
                ReturnCode::InvalidPayloadLength,
                "input shorter than 128 bytes",
            );
        }
        let t = match Transfer::decode(input) {
            Ok(t) => t,
            Err(_) => return self.refuse(ReturnCode::InvalidInput, "unknown action"),
        };
        if take(FwFault::Busy) {
            return self.refuse(ReturnCode::Busy, "busy (fault)");
        }
        if t.action == TransferAction::Abort {
            return self.abort_cmd();
        }
        if take(FwFault::OutOfOrder) {
            return self.refuse(ReturnCode::FwTransferOutOfOrder, "out of order (fault)");
        }
        if bg_busy {
            return self.refuse(ReturnCode::Busy, "a background operation is running");
        }
        let offset = usize::try_from(t.byte_offset()).unwrap_or(usize::MAX);
        let len = t.data.len();
        let whole = |o: usize| o.checked_add(len).is_some_and(|end| end <= MAX_IMAGE);
        match t.action {
            TransferAction::Full | TransferAction::Initiate if self.xfer.is_some() => {
                return self.refuse(ReturnCode::FwTransferInProgress, "a transfer is open");
            }
            TransferAction::Full => {
                if !whole(0) {
                    return self.refuse(ReturnCode::InvalidInput, "image too large");
                }
            }
            TransferAction::Initiate => {
                if offset != 0 {
                    return self.refuse(ReturnCode::InvalidInput, "Initiate at a non-zero offset");
                }
                if len == 0 || len % OFFSET_UNIT != 0 {
                    return self.refuse(ReturnCode::InvalidInput, "part not a multiple of 128");
                }
                if !whole(0) {
                    return self.refuse(ReturnCode::InvalidInput, "image too large");
                }
            }
            TransferAction::Continue | TransferAction::End => {
                let Some(x) = &self.xfer else {
                    return self.refuse(ReturnCode::FwTransferOutOfOrder, "no transfer open");
                };
                if offset != x.buf.len() && offset != x.last_offset {
                    let why = format!(
                        "part at byte {offset}, expected {} or a resend at {}",
                        x.buf.len(),
                        x.last_offset
                    );
                    return self.refuse(ReturnCode::FwTransferOutOfOrder, &why);
                }
                if t.action == TransferAction::Continue && (len == 0 || len % OFFSET_UNIT != 0) {
                    return self.refuse(ReturnCode::InvalidInput, "part not a multiple of 128");
                }
                if !whole(offset) {
                    return self.refuse(ReturnCode::InvalidInput, "image too large");
                }
            }
            TransferAction::Abort => {}
        }
        if t.action.names_slot() && !self.writable(t.slot) {
            let why = format!("slot {} cannot be written", t.slot);
            return self.refuse(ReturnCode::InvalidSlot, &why);
        }
        let auth_fail = t.action.names_slot() && take(FwFault::AuthFail);
        self.running = Some(Running::Part {
            action: t.action,
            slot: t.slot,
            offset,
            data: t.data.to_vec(),
            auth_fail,
        });
        FwOutcome::Background(self.part_time(len))
    }

    /// The Abort action: drops the open transfer and a part still running.
    fn abort_cmd(&mut self) -> FwOutcome {
        let running = self.running_part();
        let open = self.xfer.take().is_some();
        if running || open {
            self.events.push("FW transfer aborted by the host".into());
        }
        if running {
            self.abort_running();
            return FwOutcome::StopBackground;
        }
        if open {
            self.stats.aborts = self.stats.aborts.saturating_add(1);
        }
        FwOutcome::rc(ReturnCode::Success)
    }

    /// Whether a Transfer FW part is running in the background.
    pub fn running_part(&self) -> bool {
        matches!(self.running, Some(Running::Part { .. }))
    }

    /// Whether a firmware command (part or activation) is running in the background.
    pub fn running(&self) -> bool {
        self.running.is_some()
    }

    /// The running part or activation is stopped (Request Abort, the Abort action, a reset):
    /// nothing of it takes effect.
    pub fn abort_running(&mut self) {
        if let Some(r) = self.running.take() {
            let what = match r {
                Running::Part { action, .. } => {
                    self.stats.aborts = self.stats.aborts.saturating_add(1);
                    format!("Transfer FW {action} part")
                }
                Running::Activate { slot, .. } => format!("activation of slot {slot}"),
            };
            self.events.push(format!("{what} aborted"));
        }
    }

    /// The running background operation ends: applies it; returns its final return code.
    pub fn finish(&mut self, now: Duration) -> ReturnCode {
        let Some(r) = self.running.take() else {
            return ReturnCode::InternalError;
        };
        match r {
            Running::Part {
                action,
                slot,
                offset,
                data,
                auth_fail,
            } => self.store_part(now, action, slot, offset, data, auth_fail),
            Running::Activate { slot, fail } => {
                if let Some(rc) = fail {
                    self.events
                        .push(format!("activation of slot {slot} failed (fault)"));
                    return rc;
                }
                self.make_active(slot, "online");
                ReturnCode::Success
            }
        }
    }

    fn store_part(
        &mut self,
        now: Duration,
        action: TransferAction,
        slot: u8,
        offset: usize,
        data: Vec<u8>,
        auth_fail: bool,
    ) -> ReturnCode {
        self.stats.parts = self.stats.parts.saturating_add(1);
        let image = match action {
            TransferAction::Initiate => {
                self.xfer = Some(Xfer {
                    buf: data,
                    last_offset: 0,
                    last_activity: now,
                    parts: 1,
                });
                return ReturnCode::Success;
            }
            TransferAction::Continue => {
                if let Some(x) = self.xfer.as_mut() {
                    x.buf.truncate(offset);
                    x.buf.extend_from_slice(&data);
                    x.last_offset = offset;
                    x.last_activity = now;
                    x.parts = x.parts.saturating_add(1);
                    return ReturnCode::Success;
                }
                // Dropped while the part ran (cannot happen: the idle check waits for it).
                return ReturnCode::FwTransferOutOfOrder;
            }
            TransferAction::End => {
                let Some(mut x) = self.xfer.take() else {
                    return ReturnCode::FwTransferOutOfOrder;
                };
                x.buf.truncate(offset);
                x.buf.extend_from_slice(&data);
                x.buf
            }
            TransferAction::Full => data,
            TransferAction::Abort => return ReturnCode::Success,
        };
        let len = image.len();
        if auth_fail || image_revision(&image).is_none() {
            self.stats.verify_failed = self.stats.verify_failed.saturating_add(1);
            let why = if auth_fail {
                "verification failed (fault)".to_string()
            } else {
                "its first 16 bytes are not a revision field".to_string()
            };
            self.events
                .push(format!("FW image of {len} B for slot {slot}: {why}"));
            return ReturnCode::FwVerificationFailed;
        }
        if let Some(cell) = self.images.get_mut(usize::from(slot).saturating_sub(1)) {
            *cell = Some(Image::new(image));
        }
        if self.staged == slot {
            self.staged = 0;
        }
        self.stats.images = self.stats.images.saturating_add(1);
        let rev = self.slot(slot).map(|s| s.rev).unwrap_or_default();
        self.events.push(format!(
            "FW image of {len} B stored in slot {slot}: '{rev}'"
        ));
        ReturnCode::Success
    }

    fn make_active(&mut self, slot: u8, how: &str) {
        self.active = slot;
        if self.staged == slot {
            self.staged = 0;
        }
        self.stats.activations = self.stats.activations.saturating_add(1);
        self.events.push(format!("FW slot {slot} active ({how})"));
    }

    /// Activate FW (0202h). `bg_busy`: a background operation is running; `take`: takes an
    /// armed fault.
    pub fn activate_cmd(&mut self, input: &[u8], bg_busy: bool, take: TakeFault<'_>) -> FwOutcome {
        if input.len() != swcci_proto::payload::firmware::ACTIVATE_LEN {
            return FwOutcome::rc(ReturnCode::InvalidPayloadLength);
        }
        let Ok(a) = Activate::decode(input) else {
            return FwOutcome::rc(ReturnCode::InvalidInput);
        };
        if bg_busy {
            return FwOutcome::rc(ReturnCode::Busy);
        }
        if self.xfer.is_some() {
            return FwOutcome::rc(ReturnCode::FwTransferInProgress);
        }
        if a.slot == self.active || self.image(a.slot).is_none() {
            self.events.push(format!(
                "Activate FW refused: slot {} is active, empty or absent",
                a.slot
            ));
            return FwOutcome::rc(ReturnCode::InvalidSlot);
        }
        let fail = if take(FwFault::ActivateFail) {
            Some(ReturnCode::ActivationFailedRolledBack)
        } else if take(FwFault::ColdReset) {
            Some(ReturnCode::ColdResetRequired)
        } else {
            None
        };
        match a.action {
            ActivateAction::OnReset => {
                if let Some(rc) = fail {
                    return FwOutcome::rc(rc);
                }
                self.staged = a.slot;
                self.events
                    .push(format!("FW slot {} staged for the next reset", a.slot));
                FwOutcome::rc(ReturnCode::Success)
            }
            ActivateAction::Online if self.settings.activate_ms == 0 => {
                if let Some(rc) = fail {
                    return FwOutcome::rc(rc);
                }
                self.make_active(a.slot, "online");
                FwOutcome::rc(ReturnCode::Success)
            }
            ActivateAction::Online => {
                self.running = Some(Running::Activate { slot: a.slot, fail });
                FwOutcome::Background(Duration::from_millis(self.settings.activate_ms))
            }
        }
    }

    /// A function reset (the cold reset of on-reset activation): the staged slot becomes
    /// active; an open transfer and a running command are dropped.
    pub fn reset(&mut self) {
        let stopped = self.running_part();
        self.abort_running();
        if self.xfer.take().is_some() && !stopped {
            self.stats.aborts = self.stats.aborts.saturating_add(1);
            self.events.push("FW transfer dropped by the reset".into());
        }
        if self.staged != 0 {
            let s = self.staged;
            self.make_active(s, "at the reset");
        }
    }
}
