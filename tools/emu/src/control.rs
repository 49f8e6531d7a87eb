// SPDX-License-Identifier: GPL-2.0

//! The control channel: how tests arm faults, change settings, inject messages and read
//! counters while the guest drives the device. This comment is the contract with the in-guest
//! tests.
//!
//! # Transport
//! `swcci-emu --control PATH` listens on the Unix stream socket PATH. QEMU connects to it as a
//! chardev and gives it to the guest as a virtio serial port:
//! `-chardev socket,id=ctl0,path=PATH -device virtserialport,chardev=ctl0,name=swcci.emu0`
//! (in the guest: the /dev/vportNpM whose `name` in /sys/class/virtio-ports/ is `swcci.emu0`).
//! The emulator accepts any number of connections, one after the other or at the same time;
//! QEMU may reconnect. A guest that opens and closes the port changes nothing: the socket stays
//! connected, and every command gets its reply whether or not the guest reads it, so a guest
//! must read the reply of each command before sending the next one (or it may later read a
//! stale reply).
//!
//! # Framing
//! One command per line, terminated by LF (a CR before it is ignored). Partial reads are
//! reassembled. Blank lines and lines starting with `#` are ignored and get no reply. Every
//! other line gets exactly one reply line: `ok`, `ok VALUES` or `err REASON`. Tokens are
//! separated by blanks; numbers are decimal or `0x` hexadecimal. A line longer than
//! [`MAX_LINE`] bytes is answered with `err line too long` and dropped.
//!
//! # Commands
//! Faults apply to the next command(s) the guest submits; MODE is `once` (the default: the
//! next command it applies to) or `always` (until `clear`). The word `fault` may precede a
//! fault name (`fault delay 100 once` = `delay 100 once`). Replies are `ok`.
//! - `doorbell-stuck [MODE]`: the doorbell of the command never clears (until `clear`, which
//!   abandons the command with return code 0004h, or a function reset).
//! - `delay MS [MODE]`: the command completes MS milliseconds (0..=3600000) after its doorbell.
//! - `bad-length [MODE]`: the output length is reported as twice the payload size.
//! - `rc N [MODE]`: the command is not carried out and completes with return code N
//!   (0..=0xffff, also values no table defines, e.g. 0x1234) and no output.
//! - `bg-never [MODE]`: the next background operation stops at 99 % and never completes.
//! - `bg-stuck PERCENT [MODE]`: the next background operation stops at PERCENT (0..=99).
//!   (Request Abort still stops a stuck operation when aborts are supported.)
//! - `no-irq [MODE]`: interrupts stay advertised but are not sent (once: those caused by the
//!   next command, including its background completion and MMPT arrival interrupts;
//!   always: every interrupt of the function; `spurious-irq` ones are still sent).
//! - `ready-never [MODE]`: READY (MMB Status bit 1, memory device status bit 4) reads clear
//!   while armed; after the next function reset the doorbell never leaves its reset value, so
//!   the driver's initialisation times out. Commands already working keep working. Stays armed
//!   until `clear` whatever MODE says.
//! - `reset-after-reads N [MODE]`: when the next command completes, the function performs a
//!   function reset (as `reset` does) right after the guest's N-th (0..=1000000) BAR0 read
//!   that follows the completion; N = 0: at the completion, before any read (the doorbell
//!   interrupt of the completion is still sent). Every BAR0 read counts, whatever register.
//!   A doorbell-stuck command never completes, so it never triggers. `always`: after every
//!   command.
//! - `remove-after-reads N [MODE]`: the same, but the function disappears as
//!   `surprise-remove` does (undone by `clear`). One `after-reads` fault is armed at a time:
//!   arming one replaces the other (the same for the `at-part` faults). Counters:
//!   `fault-resets`, `fault-removals` (and `resets` counts every function reset).
//! - `reset-at-part K [MODE]` / `remove-at-part K [MODE]`: at the K-th part (1..=1000000,
//!   1-based) of the next multi-part MMPT Send Message transfer (PCI-SIG opcode 0100h with
//!   action Initiate, Continue or Finish), the function resets / disappears when that part's
//!   doorbell is rung, instead of completing the part. Parts are counted by doorbell from the
//!   Initiate part (part 1; a new Initiate starts the count over; a resent part counts
//!   again); Full messages are not multi-part and do not count. `once`: the next transfer;
//!   when it ends (Finish, Abort) before its K-th part, the fault is used up without effect.
//!   `always`: every transfer. After a removal at a part the doorbell stays set; `clear`
//!   abandons that part with return code 0004h (as for `doorbell-stuck`).
//! - `no-event-irq [MODE]`: event interrupts (an event log going from empty to holding a
//!   record while its Event Interrupt Policy says MSI/MSI-X) are not sent; the records are
//!   logged and the Event Status register shows them. Counter: `event-irqs` counts the
//!   interrupts due, `irqs-suppressed` the ones swallowed.
//! - `short-log N [MODE]`: Get Log (0401h) of the CEL returns at most N (0..=1048576) bytes
//!   of the range asked (N = 0: none) with return code success. Each Get Log of the CEL uses
//!   the fault once (other commands do not). The driver reads the CEL at probe: tests arm it
//!   `always`, then rebind. Counter: `short-logs`.
//! - `rx-fail-at-part K [MODE]`: the K-th (1..=1000000) Receive Message command (PCI-SIG
//!   0101h) of a multi-part read fails with Internal Error (0004h) and changes nothing. Parts
//!   are counted from the read's Initiate (part 1; Continue and Finish count on, a re-read
//!   counts again); Full reads do not count. `once`: the first read that reaches part K.
//!   (`get mmpt` shows whether the read is still open; `mmpt-rx-aborts` counts the host's
//!   aborts.)
//!
//! Firmware faults (switch; the rules of the firmware commands are in `firmware.rs`). Each
//! applies to the switch's own firmware, or with `port P` (`fw-busy port 3 once`) to that of
//! the device behind downstream port P, reached through Tunnel Management Commands (the
//! return codes then come back inside the tunnel; `devfw.rs`). `err` for a port without a
//! device that has firmware (an upstream, empty or dead port).
//! - `fw-busy [port P] [MODE]`: the next Transfer FW (0201h), whatever its action, returns
//!   Busy (06h).
//! - `fw-out-of-order [MODE]`: the next Transfer FW part (any action but Abort) is refused
//!   with FW Transfer Out of Order (09h); the transfer stays as it was.
//! - `fw-auth-fail [MODE]`: the next End or Full part fails verification: its background
//!   operation ends with FW Verification Failed (0Ah); the transfer is dropped, the slot
//!   keeps what it had.
//! - `fw-activate-fail [MODE]`: the next Activate FW (0202h) that passes its checks fails with
//!   Activation Failed, FW Rolled Back (0Ch): online, as the return code of its background
//!   operation (at once with `fw-activate-ms 0`); on reset, at once. Nothing changes.
//! - `fw-cold-reset [MODE]`: the same with Activation Failed, Cold Reset Required (0Dh).
//!
//! Actions:
//! - `spurious-irq N [VECTOR]`: sends N (1..=100000) interrupts on VECTOR (0..=15, default 1,
//!   the mailbox vector) without a command: the first at once, the others 10 ms apart (QEMU
//!   merges eventfd signals it has not read yet into one interrupt, so a very slow QEMU may
//!   still deliver fewer); a new request replaces the rest of an earlier one. Reply `ok N`.
//!   `get stat spurious-pending` tells how many are still to come.
//! - `surprise-remove`: from now on BAR reads return all ones, writes are dropped, nothing
//!   completes and no interrupt is sent, as if the function were gone. Configuration space
//!   keeps working. Undone by `clear`.
//! - `clear`: disarms every fault (the devices' behind the ports too) and undoes
//!   `surprise-remove`. Reply `ok`.
//! - `reset`: function reset, as an FLR does: the mailbox starts over (interrupt enables
//!   off, background operation and MMPT queue dropped) and becomes ready after the ready time.
//!   Faults and settings stay. The devices behind the ports are not reset. Reply `ok`.
//! - `reset-port P`: cold reset of the device behind port P: its staged firmware slot becomes
//!   active, an open transfer and a running background operation are dropped. Reply `ok`;
//!   `err` for a port without a device that has firmware.
//! - `link P down|up`: the link of downstream port P (with a device) goes down or comes back
//!   (a cable pulled and put back): Get Physical Port State shows it, tunnels and binds to the
//!   port are refused while it is down, and a Physical Switch Event Record is logged (Warning
//!   log for down, Informational for up). No change, no record. Reply `ok`; `err` for a port
//!   that is not a downstream port with a device.
//! - `mld-error cor|nonfatal|fatal [N]`: the switch receives N (1..=100000, default 1) error
//!   messages from the MLD (`--mld-port`): N MLD Port Event Records (Warning log for `cor`,
//!   Failure log otherwise). Reply `ok`; `err` without an MLD. The event logs' rules and
//!   records are at the top of `events.rs`.
//! - `queue TYPE [HEXDATA]`: queues a received MMPT message of TYPE (0..=255) with HEXDATA
//!   (even number of hex digits; none or `-` for an empty message), raising the MMPT receive
//!   interrupt if enabled. Reply `ok QUEUE_LENGTH`; `err` when the queue (16) is full.
//! - `queue-len TYPE LEN`: the same with LEN (0..=67108864) bytes of a pattern (byte i is
//!   i mod 251): a message longer than a host takes (the driver's limit is 1 MiB).
//!
//! Settings (reply `ok`):
//! - `set abort-supported 0|1`: whether Request Abort Background Operation (0005h) works
//!   (default 1) or returns 0020h.
//! - `set bg-rc N`: final return code of the background sleep command C000h (default 0).
//! - `set responder echo|discard`: what the function does with a complete MMPT message:
//!   answer with the same type and data (default), or drop it.
//! - `set inline 0|1`: whether an MMPT answer that fits the payload (with its 16-byte
//!   header) is returned as the Send Message output instead of being queued (default 0).
//! - The `fw-` settings apply to the switch's firmware and to that of every device behind its
//!   ports alike (`get settings` shows them once).
//! - `set fw-ro-slot K`: firmware slot K (1..=slots) cannot be written: End and Full naming
//!   it get Invalid Slot (0Bh); 0: none (default).
//! - `set fw-part-us BASE PER_KIB`: a Transfer FW part completes in the background
//!   BASE + PER_KIB * bytes / 1024 microseconds after its doorbell (each 0..=3600000000;
//!   default 500 100: a 16 MiB image in 1920-byte parts takes about 6 s of device time).
//! - `set fw-idle-ms MS`: an open firmware transfer that gets no part for MS ms is dropped
//!   (default 30000; 0: never).
//! - `set fw-activate-ms MS`: an online Activate FW completes in the background after MS ms
//!   (default 20; 0: at once, return code 0).
//! - `set bind-ms MS`: Bind vPPB (5201h) and Unbind vPPB (5202h) complete in the background
//!   MS ms after their doorbell (default 20).
//! - `set event-log-cap N`: each event log (the switch CCI's and every device's) holds at most
//!   N records (1..=1024, default 32); a record beyond is dropped and counted as an overflow.
//!   Records already there stay.
//! - `set event-vector V`: the MSI-X vector (0..=15, default 3) of the event interrupts, which
//!   Get Event Interrupt Policy reports for logs set to MSI/MSI-X.
//! - `set attention 0|1`: whether the mailbox advertises the MMB attention mechanism
//!   (Capabilities bit 23; default: the mmpt personality does, the switch does not). The
//!   driver reads it at probe: rebind after changing it. Counter `doorbell-asleep`: doorbells
//!   rung by a Control write that found "attention not needed" set (no attention handshake
//!   before them); `get attention` tells whether the function is at attention now.
//! - `set mmpt 0|1`: whether the capabilities array lists the MMPT registers (default 1): 0
//!   makes a plain MMB (or CXL) mailbox of the function at its next probe.
//! - `set vectors MBOX MMPT`: the MSI-X vectors (0..=15) of the mailbox interrupts and of the
//!   MMPT receive interrupt (default 1 2; Capabilities bits 10:7, MMPT Capabilities bits
//!   4:1), read by the driver at probe. An MSI function (`--msi N`) ignores them: its
//!   interrupt message numbers follow Multiple Message Enable (`knobs.rs`).
//! - `set cel-effect OPCODE EFFECT|default`: the CEL lists OPCODE (one it lists) with the
//!   16-bit EFFECT word instead of its own (e.g. reserved bits 15:12 set), or its own again.
//!   Read at probe. The CEL also lists 3F00h, a background sleep like C000h (u32 ms input;
//!   final return code `bg-rc`) with an opcode no specification defines, without effects.
//! - `set mmpt-part-ms MS`: every Send Message part (PCI-SIG 0100h, any action but Abort)
//!   completes MS (0..=60000) ms after its doorbell (default 0: at once): a slow function.
//! - `set dead-port-ms MS`: a Tunnel Management Command (5300h) to the `--dead-port` completes
//!   MS ms after its doorbell with return code Internal Error (04h) and no output, as a switch
//!   that gives up waiting for the device does (default 1000); 0: it never completes (the
//!   doorbell stays set: the driver times out; `clear` abandons it with 04h, a reset drops
//!   it). The fabric's rules are at the top of `fabric.rs`.
//!
//! Queries (reply `ok VALUE` or `ok key=value ...`):
//! - `get commands`: commands completed.
//! - `get irqs`: interrupts sent (spurious ones included; suppressed ones not).
//! - `get last-opcode`: `ok 0xOPCODE 0xVENDOR` of the last command submitted, `ok none`.
//! - `get stat NAME`: one counter; names: see `get stats`.
//! - `get stats`: every counter as `name=value`.
//! - `get faults`: armed faults as `name[:arg]=mode` (a device's firmware faults as
//!   `name@portP=mode`), or `none`.
//! - `get queue`: messages waiting for Receive Message.
//! - `get ready`: `1` when READY is set.
//! - `get attention`: `1` when the function is at attention (attention mechanism advertised,
//!   "attention not needed" clear), else `0`.
//! - `get mmpt`: `tx=0|1 rx=0|1 queue=N head=LEN`: a Send Message transfer open, a read of the
//!   head message begun (Initiate) and not finished, messages waiting, the head's length.
//! - `get bg`: `running=0|1 opcode=0xOPCODE percent=N rc=0xRC` of the background operation.
//! - `get settings`: `abort-supported=0|1 bg-rc=0xRC responder=echo|discard inline=0|1
//!   fw-ro-slot=K fw-part-us=BASE,PER_KIB fw-idle-ms=MS fw-activate-ms=MS bind-ms=MS
//!   dead-port-ms=MS event-log-cap=N event-vector=V attention=0|1 mmpt=0|1 vectors=MBOX,MMPT
//!   mmpt-part-ms=MS cel-effects=OPCODE:EFFECT,...|none`.
//! - `get events`: the switch CCI's event logs: `informational=N warning=N failure=N fatal=N`
//!   (records held), `informational-overflow=N ...` (overflow counts), `status=0xS` (the Event
//!   Status register), `policy=I,W,F,X` (each log's interrupt: `none` or `msix:VECTOR`).
//! - `get port-events PORT`: the same for the device behind PORT (`err` for a port without
//!   event logs: upstream, empty, dead).
//! - `get fabric`: `ok JSON`, the function as it stands now, on one line, in the schema of
//!   `--describe-json` (README): after a bind or unbind it shows the new bindings and port
//!   states; firmware slots with their lengths, hashes and revisions, the switch's and each
//!   device's behind its ports.
//! - `get fw`: `slots=N active=K staged=K transfer=0|1 received=BYTES parts=N` (staged 0: none;
//!   received and parts: of the open transfer).
//! - `get fw SLOT`: `len=N sha256=HEX rev=REV active=0|1 staged=0|1 ro=0|1`: the device's view
//!   of the image in SLOT (SHA-256 of its bytes, lowercase; revision = its first 16 bytes up
//!   to the first NUL, with blanks, `%` and bytes outside 21h..=7Eh written `%XX`, e.g.
//!   `swcci-emu%201.0`). An empty slot: `len=0 sha256=none rev= ...`. A slot above the
//!   device's count: `err`. Only the switch personality has firmware.
//! - `get port-fw PORT`: the firmware of the device behind PORT, as `get fw` writes the
//!   switch's, then `bg=0|1 bg-opcode=0xOPCODE bg-rc=0xRC aborts=N images=N`: its background
//!   operation (running; opcode and final return code of the running or last one, 0 before
//!   any) and its counters (transfers dropped or parts stopped; images stored).
//! - `get port-fw PORT SLOT`: that device's view of SLOT, as `get fw SLOT` writes it. `err`
//!   for a port without a device that has firmware, or a slot above its count.
//! - `get config`: `personality=... vendor=0x... device=0x... serial=0x... payload=N
//!   msix=0|1 doorbell-irq=0|1 bg-irq=0|1 mbox-vector=N mmpt-vector=N fw-slots=N ports=N
//!   vcs=N vppbs=N msi=N msi-enabled=N` (the vectors in use now; msi: messages the MSI
//!   capability offers, 0 without one; msi-enabled: those the host enabled).
//! - `ping`: `ok pong`. `help`: `ok` and the command names.

use crate::common::{Mode, MBOX_VECTOR};
use crate::device::{Device, Fault, STAT_NAMES};
use crate::firmware::{Firmware, FwFault};
use crate::irq::MSIX_VECTORS;
use crate::knobs::MAX_PART_MS;
use crate::mmpt::Responder;
use crate::Shared;
use anyhow::Context as _;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use swcci_proto::payload::firmware::MAX_SLOTS;
use swcci_proto::regs::MBOX_PAYLOAD_MAX;

/// Longest command line.
pub const MAX_LINE: usize = 4 << 20;
/// Longest delay fault.
const MAX_DELAY_MS: u64 = 3_600_000;
/// Most interrupts one `spurious-irq` sends.
const MAX_SPURIOUS: u32 = 100_000;
/// Largest read count of the `after-reads` faults.
const MAX_READS: u64 = 1_000_000;
/// Largest part number of the `at-part` faults.
const MAX_PART: u64 = 1_000_000;
/// Longest message `queue-len` makes.
const MAX_QUEUE_LEN: u64 = 64 << 20;

/// A setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Request Abort Background Operation supported.
    AbortSupported(bool),
    /// Final return code of the background sleep.
    BgRc(u16),
    /// MMPT responder.
    Responder(Responder),
    /// Inline MMPT answers.
    Inline(bool),
    /// The read-only firmware slot (0: none).
    FwRoSlot(u8),
    /// Time of a Transfer FW part: base and per KiB, microseconds.
    FwPartUs(u64, u64),
    /// Idle time after which a firmware transfer is dropped, ms (0: never).
    FwIdleMs(u64),
    /// Time of an online activation, ms.
    FwActivateMs(u64),
    /// Time of Bind / Unbind vPPB, ms.
    BindMs(u64),
    /// Time until a tunnel to the dead port fails, ms (0: never completes).
    DeadPortMs(u64),
    /// Records per event log.
    EventLogCap(usize),
    /// MSI-X vector of the event interrupts.
    EventVector(u16),
    /// The attention mechanism advertised.
    Attention(bool),
    /// The MMPT registers listed.
    Mmpt(bool),
    /// MSI-X vectors of the mailbox and MMPT interrupts.
    Vectors(u16, u16),
    /// A CEL effect word for an opcode (`None`: its own).
    CelEffect(u16, Option<u16>),
    /// Time of a Send Message part, ms.
    MmptPartMs(u64),
}

/// A query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Commands completed.
    Commands,
    /// Interrupts sent.
    Irqs,
    /// Last opcode.
    LastOpcode,
    /// One counter.
    Stat(String),
    /// All counters.
    Stats,
    /// Armed faults.
    Faults,
    /// Receive queue length.
    Queue,
    /// READY.
    Ready,
    /// At attention.
    Attention,
    /// MMPT transfers.
    Mmpt,
    /// Background operation.
    Bg,
    /// Settings.
    Settings,
    /// Device configuration.
    Config,
    /// Firmware state, or one slot.
    Fw(Option<u8>),
    /// The firmware of the device behind a port, or one of its slots.
    PortFw(u8, Option<u8>),
    /// The function as JSON.
    Fabric,
    /// The event logs of the switch CCI, or of the device behind a port.
    Events(Option<u8>),
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `ping`.
    Ping,
    /// `help`.
    Help,
    /// Arm a fault.
    Fault(Fault, Mode),
    /// Arm a firmware fault on the device behind a port.
    PortFault {
        /// The port.
        port: u8,
        /// The fault.
        fault: FwFault,
        /// Once or always.
        mode: Mode,
    },
    /// Cold reset of the device behind a port.
    ResetPort(u8),
    /// Send interrupts now.
    Spurious {
        /// How many.
        count: u32,
        /// On which vector.
        vector: u16,
    },
    /// Act removed.
    SurpriseRemove,
    /// Disarm everything.
    Clear,
    /// Function reset.
    Reset,
    /// Change a setting.
    Set(Setting),
    /// Take a port's link down or bring it up.
    Link {
        /// The port.
        port: u8,
        /// Up (else down).
        up: bool,
    },
    /// Error messages from the MLD.
    MldError {
        /// Which.
        kind: swcci_proto::payload::events::MldEventType,
        /// How many.
        count: u32,
    },
    /// Queue an MMPT message.
    Queue {
        /// Message type.
        msg_type: u8,
        /// Data.
        data: Vec<u8>,
    },
    /// Queue an MMPT message of a length, with a pattern.
    QueueLen {
        /// Message type.
        msg_type: u8,
        /// Length in bytes.
        len: usize,
    },
    /// Read something.
    Get(Query),
}

const COMMANDS: &str = "ping help doorbell-stuck delay bad-length rc bg-never bg-stuck no-irq \
ready-never reset-after-reads remove-after-reads reset-at-part remove-at-part short-log \
rx-fail-at-part fw-busy fw-out-of-order fw-auth-fail fw-activate-fail fw-cold-reset no-event-irq \
spurious-irq surprise-remove clear reset reset-port link mld-error set queue queue-len get";

/// Parses a number: decimal or `0x` hexadecimal.
fn number(tok: Option<&str>, what: &str) -> Result<u64, String> {
    let t = tok.ok_or_else(|| format!("missing {what}"))?;
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| format!("bad {what} '{t}'"))
}

fn bounded<T: TryFrom<u64>>(tok: Option<&str>, what: &str, max: u64) -> Result<T, String> {
    let v = number(tok, what)?;
    if v > max {
        return Err(format!("{what} {v} out of range (max {max})"));
    }
    T::try_from(v).map_err(|_| format!("{what} {v} out of range"))
}

fn boolean(tok: Option<&str>, what: &str) -> Result<bool, String> {
    match tok {
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(t) => Err(format!("bad {what} '{t}' (0 or 1)")),
        None => Err(format!("missing {what} (0 or 1)")),
    }
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if s == "-" {
        return Ok(Vec::new());
    }
    if !s.len().is_multiple_of(2) {
        return Err("hex data has an odd number of digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex data at offset {i}"))
        })
        .collect()
}

/// Takes a trailing `once` or `always` off `args` (default: once).
fn take_mode(args: &mut Vec<&str>) -> Mode {
    match args.last().copied() {
        Some("once") => {
            args.pop();
            Mode::Once
        }
        Some("always") => {
            args.pop();
            Mode::Always
        }
        _ => Mode::Once,
    }
}

/// Parses one line. `Ok(None)` for a blank line or a comment.
pub fn parse(line: &str) -> Result<Option<Request>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut toks = line.split_ascii_whitespace().peekable();
    if toks.peek() == Some(&"fault") {
        toks.next();
    }
    let Some(word) = toks.next() else {
        return Err("missing fault name".into());
    };
    let mut args: Vec<&str> = toks.collect();
    let no_more = |args: &[&str]| -> Result<(), String> {
        match args.first() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected '{t}'")),
        }
    };
    let fault = |f: Fault, mode: Mode| Ok(Some(Request::Fault(f, mode)));
    match word {
        "ping" | "help" | "surprise-remove" | "clear" | "reset" => {
            no_more(&args)?;
            Ok(Some(match word {
                "ping" => Request::Ping,
                "help" => Request::Help,
                "surprise-remove" => Request::SurpriseRemove,
                "clear" => Request::Clear,
                _ => Request::Reset,
            }))
        }
        "doorbell-stuck" | "bad-length" | "bg-never" | "no-irq" | "ready-never"
        | "no-event-irq" => {
            let mode = take_mode(&mut args);
            no_more(&args)?;
            let f = match word {
                "doorbell-stuck" => Fault::DoorbellStuck,
                "bad-length" => Fault::BadLength,
                "bg-never" => Fault::BgNever,
                "no-irq" => Fault::NoIrq,
                "no-event-irq" => Fault::NoEventIrq,
                _ => Fault::ReadyNever,
            };
            fault(f, mode)
        }
        w if FwFault::parse(w).is_some() => {
            let mode = take_mode(&mut args);
            let Some(f) = FwFault::parse(w) else {
                return Err(format!("unknown command '{w}'"));
            };
            let mut it = args.into_iter();
            match it.next() {
                None => fault(Fault::Fw(f), mode),
                Some("port") => {
                    let port = bounded(it.next(), "port", u64::from(u8::MAX))?;
                    no_more(&it.collect::<Vec<_>>())?;
                    Ok(Some(Request::PortFault {
                        port,
                        fault: f,
                        mode,
                    }))
                }
                Some(t) => Err(format!("unexpected '{t}' (port P, once or always)")),
            }
        }
        "link" => {
            let mut it = args.into_iter();
            let port = bounded(it.next(), "port", u64::from(u8::MAX))?;
            let up = match it.next() {
                Some("up") => true,
                Some("down") => false,
                Some(t) => return Err(format!("bad link state '{t}' (down or up)")),
                None => return Err("missing link state (down or up)".into()),
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::Link { port, up }))
        }
        "mld-error" => {
            use swcci_proto::payload::events::MldEventType;
            let mut it = args.into_iter();
            let kind = match it.next() {
                Some("cor") => MldEventType::Correctable,
                Some("nonfatal") => MldEventType::NonFatal,
                Some("fatal") => MldEventType::Fatal,
                Some(t) => return Err(format!("bad error kind '{t}' (cor, nonfatal or fatal)")),
                None => return Err("missing error kind (cor, nonfatal or fatal)".into()),
            };
            let count = match it.next() {
                None => 1,
                t => match bounded(t, "message count", u64::from(MAX_SPURIOUS))? {
                    0 => return Err("message count must be at least 1".into()),
                    n => n,
                },
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::MldError { kind, count }))
        }
        "reset-port" => {
            let mut it = args.into_iter();
            let port = bounded(it.next(), "port", u64::from(u8::MAX))?;
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::ResetPort(port)))
        }
        "delay" | "rc" | "bg-stuck" | "reset-after-reads" | "remove-after-reads"
        | "reset-at-part" | "remove-at-part" | "short-log" | "rx-fail-at-part" => {
            let mode = take_mode(&mut args);
            let mut it = args.into_iter();
            let reads = |t| bounded(t, "read count", MAX_READS);
            let part = |t| -> Result<u32, String> {
                match bounded(t, "part number", MAX_PART)? {
                    0 => Err("part number must be at least 1".into()),
                    k => Ok(k),
                }
            };
            let f = match word {
                "delay" => Fault::Delay(bounded(it.next(), "delay in ms", MAX_DELAY_MS)?),
                "rc" => Fault::Rc(bounded(it.next(), "return code", 0xffff)?),
                "bg-stuck" => Fault::BgStuck(bounded(it.next(), "percentage", 99)?),
                "reset-after-reads" => Fault::ResetAfterReads(reads(it.next())?),
                "remove-after-reads" => Fault::RemoveAfterReads(reads(it.next())?),
                "reset-at-part" => Fault::ResetAtPart(part(it.next())?),
                "remove-at-part" => Fault::RemoveAtPart(part(it.next())?),
                "rx-fail-at-part" => Fault::RxFailAtPart(part(it.next())?),
                _ => Fault::ShortLog(bounded(it.next(), "log length", MBOX_PAYLOAD_MAX as u64)?),
            };
            no_more(&it.collect::<Vec<_>>())?;
            fault(f, mode)
        }
        "spurious-irq" => {
            let mut it = args.into_iter();
            let count = bounded(it.next(), "interrupt count", u64::from(MAX_SPURIOUS))?;
            if count == 0 {
                return Err("interrupt count must be at least 1".into());
            }
            let vector = match it.next() {
                None => MBOX_VECTOR,
                t => bounded(t, "vector", (MSIX_VECTORS - 1) as u64)?,
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::Spurious { count, vector }))
        }
        "set" => {
            let mut it = args.into_iter();
            let name = it.next().ok_or("missing setting name")?;
            let v = it.next();
            let s = match name {
                "abort-supported" => Setting::AbortSupported(boolean(v, "abort-supported")?),
                "bg-rc" => Setting::BgRc(bounded(v, "return code", 0xffff)?),
                "responder" => Setting::Responder(match v {
                    Some("echo") => Responder::Echo,
                    Some("discard") => Responder::Discard,
                    Some(t) => return Err(format!("bad responder '{t}' (echo or discard)")),
                    None => return Err("missing responder (echo or discard)".into()),
                }),
                "inline" => Setting::Inline(boolean(v, "inline")?),
                "fw-ro-slot" => Setting::FwRoSlot(bounded(v, "slot", u64::from(MAX_SLOTS))?),
                "fw-part-us" => Setting::FwPartUs(
                    bounded(v, "base time in us", MAX_DELAY_MS * 1000)?,
                    bounded(it.next(), "time per KiB in us", MAX_DELAY_MS * 1000)?,
                ),
                "fw-idle-ms" => Setting::FwIdleMs(bounded(v, "idle time in ms", MAX_DELAY_MS)?),
                "fw-activate-ms" => {
                    Setting::FwActivateMs(bounded(v, "activation time in ms", MAX_DELAY_MS)?)
                }
                "bind-ms" => Setting::BindMs(bounded(v, "bind time in ms", MAX_DELAY_MS)?),
                "dead-port-ms" => {
                    Setting::DeadPortMs(bounded(v, "dead port time in ms", MAX_DELAY_MS)?)
                }
                "event-log-cap" => {
                    match bounded(v, "records per log", crate::events::MAX_CAP as u64)? {
                        0 => return Err("records per log must be at least 1".into()),
                        n => Setting::EventLogCap(n),
                    }
                }
                "event-vector" => {
                    Setting::EventVector(bounded(v, "vector", (MSIX_VECTORS - 1) as u64)?)
                }
                "attention" => Setting::Attention(boolean(v, "attention")?),
                "mmpt" => Setting::Mmpt(boolean(v, "mmpt")?),
                "vectors" => {
                    let max = (MSIX_VECTORS - 1) as u64;
                    Setting::Vectors(
                        bounded(v, "mailbox vector", max)?,
                        bounded(it.next(), "MMPT vector", max)?,
                    )
                }
                "cel-effect" => {
                    let op = bounded(v, "opcode", 0xffff)?;
                    match it.next() {
                        Some("default") => Setting::CelEffect(op, None),
                        t => Setting::CelEffect(op, Some(bounded(t, "effect", 0xffff)?)),
                    }
                }
                "mmpt-part-ms" => Setting::MmptPartMs(bounded(v, "part time in ms", MAX_PART_MS)?),
                n => return Err(format!("unknown setting '{n}'")),
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::Set(s)))
        }
        "queue" => {
            let mut it = args.into_iter();
            let msg_type = bounded(it.next(), "message type", 0xff)?;
            let data = match it.next() {
                Some(h) => hex(h)?,
                None => Vec::new(),
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::Queue { msg_type, data }))
        }
        "queue-len" => {
            let mut it = args.into_iter();
            let msg_type = bounded(it.next(), "message type", 0xff)?;
            let len = bounded(it.next(), "message length", MAX_QUEUE_LEN)?;
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::QueueLen { msg_type, len }))
        }
        "get" => {
            let mut it = args.into_iter();
            let q = match it.next().ok_or("missing query")? {
                "commands" => Query::Commands,
                "irqs" => Query::Irqs,
                "last-opcode" => Query::LastOpcode,
                "stat" => {
                    let n = it.next().ok_or("missing stat name")?;
                    if !STAT_NAMES.contains(&n) && n != "spurious-pending" {
                        return Err(format!("unknown stat '{n}'"));
                    }
                    Query::Stat(n.to_string())
                }
                "stats" => Query::Stats,
                "faults" => Query::Faults,
                "queue" => Query::Queue,
                "ready" => Query::Ready,
                "attention" => Query::Attention,
                "mmpt" => Query::Mmpt,
                "bg" => Query::Bg,
                "settings" => Query::Settings,
                "config" => Query::Config,
                "fabric" => Query::Fabric,
                "events" => Query::Events(None),
                "port-events" => {
                    Query::Events(Some(bounded(it.next(), "port", u64::from(u8::MAX))?))
                }
                "fw" => Query::Fw(match it.next() {
                    None => None,
                    t => Some(bounded(t, "slot", u64::from(MAX_SLOTS))?),
                }),
                "port-fw" => {
                    let port = bounded(it.next(), "port", u64::from(u8::MAX))?;
                    Query::PortFw(
                        port,
                        match it.next() {
                            None => None,
                            t => Some(bounded(t, "slot", u64::from(MAX_SLOTS))?),
                        },
                    )
                }
                q => return Err(format!("unknown query '{q}'")),
            };
            no_more(&it.collect::<Vec<_>>())?;
            Ok(Some(Request::Get(q)))
        }
        w => Err(format!("unknown command '{w}'")),
    }
}

/// `text` with every byte outside 21h..=7Eh, and `%`, written as `%XX` (so a revision with
/// blanks stays one token: "swcci-emu 1.0" is `swcci-emu%201.0`).
pub fn escape(text: &str) -> String {
    let mut s = String::new();
    for b in text.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

/// Carries out `req` on `dev`. Returns the reply line (without the newline).
pub fn apply(dev: &mut Device, now: Duration, req: Request) -> String {
    match apply_inner(dev, now, req) {
        Ok(v) if v.is_empty() => "ok".into(),
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("err {e}"),
    }
}

fn stat(dev: &Device, name: &str) -> u64 {
    dev.stat(name).unwrap_or(0)
}

fn apply_inner(dev: &mut Device, now: Duration, req: Request) -> Result<String, String> {
    dev.tick(now);
    Ok(match req {
        Request::Ping => "pong".into(),
        Request::Help => COMMANDS.into(),
        Request::Fault(f, mode) => {
            dev.arm(f, mode);
            String::new()
        }
        Request::PortFault { port, fault, mode } => {
            dev.arm_port_fw(port, fault, mode)?;
            String::new()
        }
        Request::ResetPort(port) => {
            dev.reset_port(now, port)?;
            String::new()
        }
        Request::Link { port, up } => {
            dev.set_link(now, port, up)?;
            String::new()
        }
        Request::MldError { kind, count } => {
            dev.mld_error(now, kind, count)?;
            String::new()
        }
        Request::Spurious { count, vector } => {
            dev.spurious_irqs(now, count, vector);
            count.to_string()
        }
        Request::SurpriseRemove => {
            dev.surprise_remove();
            String::new()
        }
        Request::Clear => {
            dev.clear(now);
            String::new()
        }
        Request::Reset => {
            dev.reset(now);
            String::new()
        }
        Request::Set(s) => {
            let mut fw = dev.fw.settings;
            match s {
                Setting::AbortSupported(b) => dev.settings.abort_supported = b,
                Setting::BgRc(rc) => dev.settings.bg_rc = rc,
                Setting::Responder(r) => dev.mmpt.responder = r,
                Setting::Inline(b) => dev.mmpt.inline = b,
                Setting::FwRoSlot(k) => {
                    if k > dev.fw.slots() {
                        return Err(format!("slot {k}: the device has {} slots", dev.fw.slots()));
                    }
                    fw.ro_slot = k;
                }
                Setting::FwPartUs(base, per_kib) => {
                    fw.part_base_us = base;
                    fw.part_per_kib_us = per_kib;
                }
                Setting::FwIdleMs(ms) => fw.idle_ms = ms,
                Setting::FwActivateMs(ms) => fw.activate_ms = ms,
                Setting::BindMs(ms) => dev.fabric.settings.bind_ms = ms,
                Setting::DeadPortMs(ms) => dev.fabric.settings.dead_port_ms = ms,
                Setting::EventLogCap(n) => {
                    let s = dev.event_settings();
                    dev.set_event_settings(crate::events::EventSettings { cap: n, ..s });
                }
                Setting::EventVector(v) => {
                    let s = dev.event_settings();
                    dev.set_event_settings(crate::events::EventSettings { vector: v, ..s });
                }
                Setting::Attention(b) => dev.knobs.attention = b,
                Setting::Mmpt(b) => dev.knobs.mmpt = b,
                Setting::Vectors(m, p) => dev.knobs.msix_vectors = (m, p),
                Setting::CelEffect(op, e) => {
                    if !crate::device::SWITCH_OPCODES.contains(&op) {
                        return Err(format!("opcode {op:#06x}: not in the CEL"));
                    }
                    dev.knobs.set_cel_effect(op, e);
                }
                Setting::MmptPartMs(ms) => dev.knobs.mmpt_part_ms = ms,
            }
            if fw != dev.fw.settings {
                dev.set_fw_settings(fw);
            }
            String::new()
        }
        Request::Queue { msg_type, data } => dev.inject_message(msg_type, data)?.to_string(),
        Request::QueueLen { msg_type, len } => dev.inject_pattern(msg_type, len)?.to_string(),
        Request::Get(q) => match q {
            Query::Commands => stat(dev, "commands").to_string(),
            Query::Irqs => stat(dev, "irqs").to_string(),
            Query::LastOpcode => match dev.last_opcode() {
                Some((op, vendor)) => format!("{op:#06x} {vendor:#06x}"),
                None => "none".into(),
            },
            Query::Stat(n) if n == "spurious-pending" => dev.spurious_pending().to_string(),
            Query::Stat(n) => dev
                .stat(&n)
                .ok_or_else(|| format!("unknown stat '{n}'"))?
                .to_string(),
            Query::Stats => {
                let mut s = String::new();
                for n in STAT_NAMES {
                    let _ = write!(
                        s,
                        "{}{n}={}",
                        if s.is_empty() { "" } else { " " },
                        stat(dev, n)
                    );
                }
                s
            }
            Query::Faults => dev.faults_text(),
            Query::Queue => dev.mmpt.queue_len().to_string(),
            Query::Ready => u8::from(dev.ready(now)).to_string(),
            Query::Attention => u8::from(dev.at_attention()).to_string(),
            Query::Mmpt => dev.mmpt_state(),
            Query::Bg => {
                let (running, op, pct, rc) = dev.bg_state();
                format!(
                    "running={} opcode={op:#06x} percent={pct} rc={rc:#06x}",
                    u8::from(running)
                )
            }
            Query::Settings => {
                let fw = dev.fw.settings;
                let fab = dev.fabric.settings;
                let ev = dev.event_settings();
                format!(
                    "abort-supported={} bg-rc={:#06x} responder={} inline={} fw-ro-slot={} \
fw-part-us={},{} fw-idle-ms={} fw-activate-ms={} bind-ms={} dead-port-ms={} event-log-cap={} \
event-vector={} {}",
                    u8::from(dev.settings.abort_supported),
                    dev.settings.bg_rc,
                    dev.mmpt.responder.name(),
                    u8::from(dev.mmpt.inline),
                    fw.ro_slot,
                    fw.part_base_us,
                    fw.part_per_kib_us,
                    fw.idle_ms,
                    fw.activate_ms,
                    fab.bind_ms,
                    fab.dead_port_ms,
                    ev.cap,
                    ev.vector,
                    dev.knobs.describe()
                )
            }
            Query::Fabric => dev.describe().to_string(),
            Query::Events(None) => dev.ev.describe(),
            Query::Events(Some(port)) => dev
                .fabric
                .device_events(port)
                .ok_or_else(|| format!("port {port}: no device with event logs"))?
                .describe(),
            Query::Fw(None) => fw_state(&dev.fw),
            Query::Fw(Some(k)) => fw_slot(&dev.fw, k)?,
            Query::PortFw(port, slot) => {
                let d = dev
                    .fabric
                    .device_fw(port)
                    .ok_or_else(|| format!("port {port}: no device with firmware"))?;
                match slot {
                    Some(k) => fw_slot(&d.fw, k)?,
                    None => {
                        let st = d.state();
                        format!(
                            "{} bg={} bg-opcode={:#06x} bg-rc={:#06x} aborts={} images={}",
                            fw_state(&d.fw),
                            u8::from(st.running),
                            st.opcode,
                            st.rc,
                            d.fw.stats.aborts,
                            d.fw.stats.images
                        )
                    }
                }
            }
            Query::Config => {
                let c = dev.config();
                format!(
                    "personality={} vendor={:#06x} device={:#06x} serial={:#x} payload={} \
msix={} doorbell-irq={} bg-irq={} mbox-vector={} mmpt-vector={} \
fw-slots={} ports={} vcs={} vppbs={} msi={} msi-enabled={}",
                    c.personality.name(),
                    c.vendor,
                    c.device,
                    c.serial,
                    dev.payload_size(),
                    u8::from(c.msix),
                    u8::from(c.mbox_caps().doorbell_irq()),
                    u8::from(c.mbox_caps().background_irq()),
                    dev.mbox_vector(),
                    dev.mmpt_vector(),
                    c.fw_slots,
                    c.fabric.ports,
                    c.fabric.vcs,
                    c.fabric.vppbs,
                    c.msi,
                    dev.knobs.msi_enabled,
                )
            }
        },
    })
}

/// `get fw`: slots, active, staged, the open transfer.
fn fw_state(fw: &Firmware) -> String {
    let (open, received, parts) = match fw.transfer() {
        Some((n, p)) => (1, n, p),
        None => (0, 0, 0),
    };
    format!(
        "slots={} active={} staged={} transfer={open} received={received} parts={parts}",
        fw.slots(),
        fw.active(),
        fw.staged()
    )
}

/// `get fw SLOT`: the device's view of one slot.
fn fw_slot(fw: &Firmware, k: u8) -> Result<String, String> {
    let v = fw
        .slot(k)
        .ok_or_else(|| format!("slot {k}: the device has {} slots", fw.slots()))?;
    Ok(format!(
        "len={} sha256={} rev={} active={} staged={} ro={}",
        v.len,
        v.sha256.as_deref().unwrap_or("none"),
        escape(&v.rev),
        u8::from(v.active),
        u8::from(v.staged),
        u8::from(v.read_only)
    ))
}

/// Parses and carries out one line. `None` when the line needs no reply.
pub fn handle_line(dev: &mut Device, now: Duration, line: &str) -> Option<String> {
    match parse(line) {
        Ok(None) => None,
        Ok(Some(req)) => Some(apply(dev, now, req)),
        Err(e) => Some(format!("err {e}")),
    }
}

/// Splits a byte stream into lines and answers each.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Dropping the rest of a line that was too long.
    discarding: bool,
}

impl LineBuffer {
    /// Feeds `data`; calls `line` for every complete line and collects the replies.
    pub fn feed(
        &mut self,
        data: &[u8],
        mut line: impl FnMut(&str) -> Option<String>,
    ) -> Vec<String> {
        let mut replies = Vec::new();
        for chunk in data.split_inclusive(|b| *b == b'\n') {
            let complete = chunk.last() == Some(&b'\n');
            let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            if self.discarding {
                if complete {
                    self.discarding = false;
                }
                continue;
            }
            self.buf.extend_from_slice(body);
            if self.buf.len() > MAX_LINE {
                self.buf.clear();
                replies.push("err line too long".into());
                self.discarding = !complete;
                continue;
            }
            if complete {
                let text = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                if let Some(r) = line(text.trim_end_matches('\r')) {
                    replies.push(r);
                }
            }
        }
        replies
    }
}

/// Binds the control socket at `path`, removing a stale socket left by an earlier run.
pub fn listen(path: &Path) -> anyhow::Result<UnixListener> {
    crate::remove_stale_socket(path)?;
    UnixListener::bind(path).with_context(|| format!("bind control socket {}", path.display()))
}

fn serve_connection(mut stream: UnixStream, shared: &Shared, id: u64) {
    let mut lines = LineBuffer::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                shared.log(0, &format!("control connection {id}: read: {e}"));
                break;
            }
        };
        let replies = lines.feed(buf.get(..n).unwrap_or(&[]), |l| {
            let reply = crate::mctp::control_line(&shared.mctp, l)
                .or_else(|| shared.with(|dev, now| handle_line(dev, now, l)));
            if let Some(r) = &reply {
                shared.log(0, &format!("control: {l} -> {r}"));
            }
            reply
        });
        for r in replies {
            if let Err(e) = stream.write_all(format!("{r}\n").as_bytes()) {
                shared.log(0, &format!("control connection {id}: write: {e}"));
                return;
            }
        }
    }
    shared.log(0, &format!("control connection {id} closed"));
}

/// Accepts control connections for as long as the process runs, each served by its own thread.
pub fn serve(listener: UnixListener, shared: Arc<Shared>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let mut id = 0u64;
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        id = id.saturating_add(1);
                        shared.log(0, &format!("control connection {id} opened"));
                        let sh = shared.clone();
                        let spawned = std::thread::Builder::new()
                            .name(format!("control-{id}"))
                            .spawn(move || serve_connection(stream, &sh, id));
                        if let Err(e) = spawned {
                            shared.log(0, &format!("control connection {id}: no thread: {e}"));
                        }
                    }
                    Err(e) => {
                        shared.log(0, &format!("control accept: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .context("start the control thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Personality;
    use crate::device::DeviceConfig;
    use crate::irq::FakeIrqs;

    fn dev() -> Device {
        Device::new(
            DeviceConfig::new(Personality::Switch),
            Arc::new(FakeIrqs::new()),
            Duration::ZERO,
        )
    }

    fn reply(d: &mut Device, line: &str) -> String {
        handle_line(d, Duration::from_millis(1), line).unwrap()
    }

    #[test]
    fn parses_every_command() {
        let p = |l: &str| parse(l).unwrap().unwrap();
        assert_eq!(p("ping"), Request::Ping);
        assert_eq!(p("help"), Request::Help);
        assert_eq!(
            p("doorbell-stuck"),
            Request::Fault(Fault::DoorbellStuck, Mode::Once)
        );
        assert_eq!(
            p("fault doorbell-stuck always"),
            Request::Fault(Fault::DoorbellStuck, Mode::Always)
        );
        assert_eq!(
            p("delay 250"),
            Request::Fault(Fault::Delay(250), Mode::Once)
        );
        assert_eq!(
            p("delay 0x10 always"),
            Request::Fault(Fault::Delay(16), Mode::Always)
        );
        assert_eq!(
            p("bad-length once"),
            Request::Fault(Fault::BadLength, Mode::Once)
        );
        assert_eq!(
            p("rc 0x1234"),
            Request::Fault(Fault::Rc(0x1234), Mode::Once)
        );
        assert_eq!(p("rc 4 always"), Request::Fault(Fault::Rc(4), Mode::Always));
        assert_eq!(p("bg-never"), Request::Fault(Fault::BgNever, Mode::Once));
        assert_eq!(
            p("bg-stuck 50 always"),
            Request::Fault(Fault::BgStuck(50), Mode::Always)
        );
        assert_eq!(
            p("no-irq always"),
            Request::Fault(Fault::NoIrq, Mode::Always)
        );
        assert_eq!(
            p("ready-never"),
            Request::Fault(Fault::ReadyNever, Mode::Once)
        );
        assert_eq!(
            p("reset-after-reads 0"),
            Request::Fault(Fault::ResetAfterReads(0), Mode::Once)
        );
        assert_eq!(
            p("fault remove-after-reads 3 always"),
            Request::Fault(Fault::RemoveAfterReads(3), Mode::Always)
        );
        assert_eq!(
            p("reset-at-part 2"),
            Request::Fault(Fault::ResetAtPart(2), Mode::Once)
        );
        assert_eq!(
            p("remove-at-part 0x10 once"),
            Request::Fault(Fault::RemoveAtPart(16), Mode::Once)
        );
        assert_eq!(
            p("short-log 0 always"),
            Request::Fault(Fault::ShortLog(0), Mode::Always)
        );
        assert_eq!(
            p("fw-busy always"),
            Request::Fault(Fault::Fw(FwFault::Busy), Mode::Always)
        );
        assert_eq!(
            p("fault fw-auth-fail"),
            Request::Fault(Fault::Fw(FwFault::AuthFail), Mode::Once)
        );
        assert_eq!(
            p("fw-auth-fail port 3 always"),
            Request::PortFault {
                port: 3,
                fault: FwFault::AuthFail,
                mode: Mode::Always
            }
        );
        assert_eq!(
            p("fault fw-busy port 0x2"),
            Request::PortFault {
                port: 2,
                fault: FwFault::Busy,
                mode: Mode::Once
            }
        );
        assert_eq!(p("reset-port 1"), Request::ResetPort(1));
        assert_eq!(
            p("rx-fail-at-part 2 always"),
            Request::Fault(Fault::RxFailAtPart(2), Mode::Always)
        );
        assert_eq!(
            p("queue-len 5 1048577"),
            Request::QueueLen {
                msg_type: 5,
                len: 1_048_577
            }
        );
        assert_eq!(p("set attention 1"), Request::Set(Setting::Attention(true)));
        assert_eq!(p("set mmpt 0"), Request::Set(Setting::Mmpt(false)));
        assert_eq!(p("set vectors 0 1"), Request::Set(Setting::Vectors(0, 1)));
        assert_eq!(
            p("set cel-effect 0x3f00 0x1000"),
            Request::Set(Setting::CelEffect(0x3f00, Some(0x1000)))
        );
        assert_eq!(
            p("set cel-effect 0x3f00 default"),
            Request::Set(Setting::CelEffect(0x3f00, None))
        );
        assert_eq!(
            p("set mmpt-part-ms 50"),
            Request::Set(Setting::MmptPartMs(50))
        );
        assert_eq!(p("get attention"), Request::Get(Query::Attention));
        assert_eq!(p("get mmpt"), Request::Get(Query::Mmpt));
        assert_eq!(p("get port-fw 2"), Request::Get(Query::PortFw(2, None)));
        assert_eq!(
            p("get port-fw 2 3"),
            Request::Get(Query::PortFw(2, Some(3)))
        );
        assert_eq!(p("set fw-ro-slot 2"), Request::Set(Setting::FwRoSlot(2)));
        assert_eq!(
            p("set fw-part-us 0 0x10"),
            Request::Set(Setting::FwPartUs(0, 16))
        );
        assert_eq!(p("set fw-idle-ms 5"), Request::Set(Setting::FwIdleMs(5)));
        assert_eq!(
            p("set fw-activate-ms 0"),
            Request::Set(Setting::FwActivateMs(0))
        );
        assert_eq!(p("get fw"), Request::Get(Query::Fw(None)));
        assert_eq!(p("get fabric"), Request::Get(Query::Fabric));
        assert_eq!(p("set bind-ms 7"), Request::Set(Setting::BindMs(7)));
        assert_eq!(
            p("set dead-port-ms 0"),
            Request::Set(Setting::DeadPortMs(0))
        );
        assert_eq!(p("get fw 2"), Request::Get(Query::Fw(Some(2))));
        assert_eq!(
            p("spurious-irq 3"),
            Request::Spurious {
                count: 3,
                vector: 1
            }
        );
        assert_eq!(
            p("spurious-irq 1 2"),
            Request::Spurious {
                count: 1,
                vector: 2
            }
        );
        assert_eq!(p("surprise-remove"), Request::SurpriseRemove);
        assert_eq!(p("clear"), Request::Clear);
        assert_eq!(p("reset"), Request::Reset);
        assert_eq!(
            p("set abort-supported 0"),
            Request::Set(Setting::AbortSupported(false))
        );
        assert_eq!(p("set bg-rc 0x12"), Request::Set(Setting::BgRc(0x12)));
        assert_eq!(
            p("set responder discard"),
            Request::Set(Setting::Responder(Responder::Discard))
        );
        assert_eq!(p("set inline 1"), Request::Set(Setting::Inline(true)));
        assert_eq!(
            p("queue 1 0aff"),
            Request::Queue {
                msg_type: 1,
                data: vec![0x0a, 0xff]
            }
        );
        assert_eq!(
            p("queue 0x7f"),
            Request::Queue {
                msg_type: 0x7f,
                data: vec![]
            }
        );
        assert_eq!(
            p("queue 2 -"),
            Request::Queue {
                msg_type: 2,
                data: vec![]
            }
        );
        assert_eq!(p("get commands"), Request::Get(Query::Commands));
        assert_eq!(p("get irqs"), Request::Get(Query::Irqs));
        assert_eq!(p("get last-opcode"), Request::Get(Query::LastOpcode));
        assert_eq!(
            p("get stat bg-started"),
            Request::Get(Query::Stat("bg-started".into()))
        );
        for q in [
            "stats", "faults", "queue", "ready", "bg", "settings", "config",
        ] {
            assert!(matches!(p(&format!("get {q}")), Request::Get(_)));
        }
        assert_eq!(p("  ping \r"), Request::Ping);
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("   # comment").unwrap(), None);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for l in [
            "bogus",
            "fault",
            "ping extra",
            "delay",
            "delay x",
            "delay -5",
            "delay 3600001",
            "delay 5 sometimes",
            "rc 0x10000",
            "rc",
            "bg-stuck 100",
            "bg-stuck",
            "doorbell-stuck twice",
            "reset-after-reads",
            "reset-after-reads 1000001",
            "remove-after-reads -1",
            "reset-at-part 0",
            "remove-at-part",
            "remove-at-part 1 2",
            "short-log",
            "short-log 1048577",
            "short-log 4 sometimes",
            "fw-busy 3",
            "fw-busy port",
            "fw-busy port x",
            "fw-busy port 256",
            "fw-busy port 1 once extra",
            "fw-busy once port 1",
            "reset-port",
            "reset-port 1 2",
            "get port-fw",
            "get port-fw 1 5",
            "get port-fw 1 2 3",
            "fw-nonsense",
            "set fw-ro-slot 5",
            "set fw-part-us 1",
            "set fw-part-us 1 2 3",
            "set fw-idle-ms",
            "get fw 5",
            "get fw 1 2",
            "get fabric now",
            "set bind-ms",
            "set dead-port-ms 3600001",
            "spurious-irq",
            "spurious-irq 0",
            "spurious-irq 1 16",
            "spurious-irq 100001",
            "set",
            "set abort-supported",
            "set abort-supported yes",
            "set inline 2",
            "set responder loud",
            "set colour blue",
            "set bg-rc 65536",
            "queue",
            "queue 256 00",
            "queue 1 abc",
            "queue 1 zz",
            "queue 1 00 11",
            "get",
            "get nothing",
            "get stat",
            "get stat nonsense",
            "get commands now",
            "clear all",
            "rx-fail-at-part 0",
            "rx-fail-at-part",
            "queue-len 1",
            "queue-len 1 67108865",
            "queue-len 256 4",
            "set attention 2",
            "set mmpt",
            "set vectors 1",
            "set vectors 16 0",
            "set vectors 0 1 2",
            "set cel-effect 0x3f00",
            "set cel-effect 0x10000 0",
            "set cel-effect 0x3f00 0x10000",
            "set mmpt-part-ms 60001",
            "get attention now",
        ] {
            assert!(parse(l).is_err(), "{l} should be an error");
            let mut d = dev();
            assert!(reply(&mut d, l).starts_with("err "), "{l}");
        }
    }

    #[test]
    fn dispatches() {
        let mut d = dev();
        assert_eq!(reply(&mut d, "ping"), "ok pong");
        assert!(reply(&mut d, "help").starts_with("ok ping"));
        assert_eq!(reply(&mut d, "get commands"), "ok 0");
        assert_eq!(reply(&mut d, "get last-opcode"), "ok none");
        assert_eq!(reply(&mut d, "get faults"), "ok none");
        assert_eq!(reply(&mut d, "delay 100 always"), "ok");
        assert_eq!(reply(&mut d, "bg-stuck 7"), "ok");
        assert_eq!(
            reply(&mut d, "get faults"),
            "ok delay:100=always bg-stuck:7=once"
        );
        assert_eq!(reply(&mut d, "clear"), "ok");
        assert_eq!(reply(&mut d, "get faults"), "ok none");
        for l in [
            "reset-after-reads 2",
            "remove-at-part 3 always",
            "short-log 8",
        ] {
            assert_eq!(reply(&mut d, l), "ok");
        }
        assert_eq!(
            reply(&mut d, "get faults"),
            "ok reset-after-reads:2=once remove-at-part:3=always short-log:8=once"
        );
        // One of each kind: the removal replaces the reset.
        assert_eq!(reply(&mut d, "remove-after-reads 0"), "ok");
        assert_eq!(reply(&mut d, "reset-at-part 1"), "ok");
        assert_eq!(
            reply(&mut d, "get faults"),
            "ok remove-after-reads:0=once reset-at-part:1=once short-log:8=once"
        );
        assert_eq!(reply(&mut d, "clear"), "ok");
        assert_eq!(reply(&mut d, "spurious-irq 2"), "ok 2");
        assert_eq!(reply(&mut d, "get irqs"), "ok 1");
        assert_eq!(reply(&mut d, "get stat spurious-pending"), "ok 1");
        assert_eq!(
            handle_line(&mut d, Duration::from_millis(11), "get irqs").unwrap(),
            "ok 2"
        );
        assert_eq!(reply(&mut d, "get stat spurious-irqs"), "ok 2");
        assert_eq!(reply(&mut d, "set abort-supported 0"), "ok");
        assert_eq!(reply(&mut d, "set bg-rc 0x12"), "ok");
        assert_eq!(reply(&mut d, "set responder discard"), "ok");
        assert_eq!(reply(&mut d, "set inline 1"), "ok");
        assert_eq!(
            reply(&mut d, "get settings"),
            "ok abort-supported=0 bg-rc=0x0012 responder=discard inline=1 fw-ro-slot=0 \
fw-part-us=500,100 fw-idle-ms=30000 fw-activate-ms=20 bind-ms=20 dead-port-ms=1000 \
event-log-cap=32 event-vector=3 attention=0 mmpt=1 vectors=1,2 mmpt-part-ms=0 cel-effects=none"
        );
        for l in [
            "set fw-ro-slot 3",
            "set fw-part-us 0 7",
            "set fw-idle-ms 0",
            "set fw-activate-ms 0",
            "set bind-ms 5",
            "set dead-port-ms 0",
        ] {
            assert_eq!(reply(&mut d, l), "ok", "{l}");
        }
        assert!(reply(&mut d, "get settings").contains(
            "fw-ro-slot=3 fw-part-us=0,7 fw-idle-ms=0 fw-activate-ms=0 bind-ms=5 \
dead-port-ms=0 event-log-cap=32 event-vector=3 "
        ));
        for l in [
            "set attention 1",
            "set mmpt 0",
            "set vectors 0 1",
            "set cel-effect 0x3f00 0x1000",
            "set mmpt-part-ms 50",
        ] {
            assert_eq!(reply(&mut d, l), "ok", "{l}");
        }
        assert!(reply(&mut d, "get settings")
            .ends_with("attention=1 mmpt=0 vectors=0,1 mmpt-part-ms=50 cel-effects=0x3f00:0x1000"));
        assert_eq!(
            reply(&mut d, "set cel-effect 0x4102 4"),
            "err opcode 0x4102: not in the CEL"
        );
        assert_eq!(
            reply(&mut d, "get attention"),
            "ok 1",
            "at attention after reset"
        );
        for l in [
            "set attention 0",
            "set mmpt 1",
            "set vectors 1 2",
            "set cel-effect 0x3f00 default",
            "set mmpt-part-ms 0",
        ] {
            assert_eq!(reply(&mut d, l), "ok", "{l}");
        }
        assert_eq!(reply(&mut d, "get attention"), "ok 0");
        let fabric = reply(&mut d, "get fabric");
        let v: serde_json::Value =
            serde_json::from_str(fabric.strip_prefix("ok ").unwrap()).unwrap();
        assert_eq!(v["ports"].as_array().unwrap().len(), 4);
        assert_eq!(v["vcs"][0]["vppbs"][2]["port"], 3);
        assert_eq!(
            reply(&mut d, "set fw-ro-slot 4"),
            "err slot 4: the device has 3 slots"
        );
        assert_eq!(
            reply(&mut d, "get fw"),
            "ok slots=3 active=1 staged=0 transfer=0 received=0 parts=0"
        );
        let one = reply(&mut d, "get fw 1");
        assert!(
            one.starts_with("ok len=128 sha256=")
                && one.ends_with(" rev=swcci-emu%201.0 active=1 staged=0 ro=0"),
            "{one}"
        );
        assert_eq!(
            reply(&mut d, "get fw 3"),
            "ok len=0 sha256=none rev= active=0 staged=0 ro=1"
        );
        assert_eq!(
            reply(&mut d, "get fw 4"),
            "err slot 4: the device has 3 slots"
        );
        for f in [
            "fw-busy",
            "fw-out-of-order always",
            "fw-auth-fail",
            "fw-activate-fail",
            "fault fw-cold-reset once",
        ] {
            assert_eq!(reply(&mut d, f), "ok", "{f}");
        }
        assert_eq!(
            reply(&mut d, "get faults"),
            "ok fw-busy=once fw-out-of-order=always fw-auth-fail=once fw-activate-fail=once \
fw-cold-reset=once"
        );
        assert_eq!(reply(&mut d, "clear"), "ok");
        assert_eq!(reply(&mut d, "queue 3 010203"), "ok 1");
        assert_eq!(reply(&mut d, "get queue"), "ok 1");
        assert_eq!(reply(&mut d, "get mmpt"), "ok tx=0 rx=0 queue=1 head=3");
        assert_eq!(reply(&mut d, "queue-len 3 1048577"), "ok 2");
        for _ in 2..16 {
            assert!(reply(&mut d, "queue 3").starts_with("ok "));
        }
        assert!(reply(&mut d, "queue 3").starts_with("err receive queue full"));
        assert_eq!(reply(&mut d, "get ready"), "ok 1");
        assert_eq!(reply(&mut d, "ready-never"), "ok");
        assert_eq!(reply(&mut d, "get ready"), "ok 0");
        assert_eq!(reply(&mut d, "surprise-remove"), "ok");
        assert_eq!(
            reply(&mut d, "get faults"),
            "ok ready-never=once surprise-remove"
        );
        assert_eq!(reply(&mut d, "clear"), "ok");
        assert_eq!(reply(&mut d, "reset"), "ok");
        assert_eq!(reply(&mut d, "get queue"), "ok 0");
        assert_eq!(reply(&mut d, "get stat resets"), "ok 1");
        assert_eq!(
            reply(&mut d, "get bg"),
            "ok running=0 opcode=0x0000 percent=0 rc=0x0000"
        );
        assert_eq!(
            reply(&mut d, "get config"),
            "ok personality=switch vendor=0x1b36 device=0x5c01 serial=0x5c01000000000001 \
payload=2048 msix=1 doorbell-irq=1 bg-irq=1 mbox-vector=1 mmpt-vector=2 fw-slots=3 ports=4 \
vcs=1 vppbs=3 msi=0 msi-enabled=1"
        );
        assert_eq!(reply(&mut d, "rx-fail-at-part 3"), "ok");
        assert_eq!(reply(&mut d, "get faults"), "ok rx-fail-at-part:3=once");
        assert_eq!(reply(&mut d, "clear"), "ok");
        assert_eq!(reply(&mut d, "get faults"), "ok none");
        let stats = reply(&mut d, "get stats");
        assert!(stats.starts_with("ok commands=0 "));
        assert_eq!(stats.split(' ').count(), STAT_NAMES.len() + 1);
        assert_eq!(handle_line(&mut d, Duration::ZERO, "# nothing"), None);
    }

    #[test]
    fn line_buffer_reassembles() {
        let mut lb = LineBuffer::default();
        let mut seen = Vec::new();
        let mut feed = |lb: &mut LineBuffer, data: &[u8]| {
            lb.feed(data, |l| {
                seen.push(l.to_string());
                (!l.is_empty()).then(|| format!("re {l}"))
            })
        };
        assert!(feed(&mut lb, b"pi").is_empty());
        assert_eq!(feed(&mut lb, b"ng\r\nget "), ["re ping"]);
        assert_eq!(
            feed(&mut lb, b"irqs\n\nx\ny\n"),
            ["re get irqs", "re x", "re y"]
        );
        // Too long: one error, the rest of the line is dropped, the next line works.
        let long = vec![b'a'; MAX_LINE + 1];
        assert_eq!(feed(&mut lb, &long), ["err line too long"]);
        assert!(feed(&mut lb, b"aaaa").is_empty());
        assert_eq!(feed(&mut lb, b"aa\nok\n"), ["re ok"]);
        // Invalid UTF-8 does not panic.
        assert_eq!(feed(&mut lb, b"\xff\xfe\n"), ["re \u{fffd}\u{fffd}"]);
        assert_eq!(seen.first().map(String::as_str), Some("ping"));
    }

    #[test]
    fn event_commands() {
        use crate::fabric::FabricConfig;
        use swcci_proto::payload::events::MldEventType;
        let p = |l: &str| parse(l).unwrap().unwrap();
        assert_eq!(
            p("no-event-irq always"),
            Request::Fault(Fault::NoEventIrq, Mode::Always)
        );
        assert_eq!(p("link 4 down"), Request::Link { port: 4, up: false });
        assert_eq!(p("link 0x4 up"), Request::Link { port: 4, up: true });
        assert_eq!(
            p("mld-error cor"),
            Request::MldError {
                kind: MldEventType::Correctable,
                count: 1
            }
        );
        assert_eq!(
            p("mld-error fatal 3"),
            Request::MldError {
                kind: MldEventType::Fatal,
                count: 3
            }
        );
        assert_eq!(
            p("set event-log-cap 2"),
            Request::Set(Setting::EventLogCap(2))
        );
        assert_eq!(
            p("set event-vector 15"),
            Request::Set(Setting::EventVector(15))
        );
        assert_eq!(p("get events"), Request::Get(Query::Events(None)));
        assert_eq!(p("get port-events 2"), Request::Get(Query::Events(Some(2))));
        for bad in [
            "link 4",
            "link 4 sideways",
            "link 4 up now",
            "mld-error",
            "mld-error loud",
            "mld-error cor 0",
            "mld-error cor 100001",
            "set event-log-cap 0",
            "set event-log-cap 1025",
            "set event-vector 16",
            "get port-events",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let mut cfg = DeviceConfig::new(Personality::Switch);
        cfg.fabric = FabricConfig {
            ports: 5,
            mld_port: Some(3),
            lds: 2,
            ..FabricConfig::default()
        };
        let mut d = Device::new(cfg, Arc::new(FakeIrqs::new()), Duration::ZERO);
        assert_eq!(
            reply(&mut d, "get events"),
            "ok informational=0 warning=0 failure=0 fatal=0 informational-overflow=0 \
warning-overflow=0 failure-overflow=0 fatal-overflow=0 status=0x0 policy=none,none,none,none"
        );
        assert_eq!(reply(&mut d, "set event-log-cap 2"), "ok");
        assert_eq!(reply(&mut d, "mld-error nonfatal 3"), "ok");
        assert_eq!(reply(&mut d, "link 4 down"), "ok");
        assert_eq!(reply(&mut d, "link 4 down"), "ok");
        let ev = reply(&mut d, "get events");
        assert!(
            ev.starts_with("ok informational=0 warning=1 failure=2 fatal=0")
                && ev.contains("failure-overflow=1 ")
                && ev.contains("status=0x6 "),
            "{ev}"
        );
        assert_eq!(reply(&mut d, "get stat events-dropped"), "ok 1");
        assert!(reply(&mut d, "get fabric").contains(r#""link":"down""#));
        assert_eq!(reply(&mut d, "link 4 up"), "ok");
        assert!(reply(&mut d, "get events").starts_with("ok informational=1 warning=1"));
        assert!(reply(&mut d, "link 0 down").starts_with("err port 0"));
        assert!(reply(&mut d, "get port-events 0").starts_with("err port 0"));
        assert!(reply(&mut d, "get port-events 1").starts_with("ok informational=0"));
        assert_eq!(reply(&mut d, "no-event-irq"), "ok");
        assert_eq!(reply(&mut d, "get faults"), "ok no-event-irq=once");
        let mut plain = dev();
        assert!(reply(&mut plain, "mld-error cor").starts_with("err no multi-logical device"));
        assert!(reply(&mut d, "get settings").contains("event-log-cap=2 event-vector=3 "));
    }
}
