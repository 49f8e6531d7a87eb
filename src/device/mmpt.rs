// SPDX-License-Identifier: GPL-2.0

//! Management Message Passthrough: sending and receiving whole messages over the MMB, with the
//! multi-part transfers done here (Documentation/mmpt.rst).
//!
//! - A transfer holds a [`TransferLock`] (one for sends, one for receives) from its first part
//!   to its last, so parts of two messages never interleave; the device mutex is taken per
//!   part, so every other command, fwctl RPC and debugfs read runs between the parts of a
//!   long transfer. A caller waiting for another's transfer waits interruptibly (a signal
//!   restarts the call: nothing was sent yet).
//! - A transfer is capped in time (the send's `timeout_ms`, else [`TRANSFER_MS`]) and ends
//!   at a fatal signal between parts; either way it is aborted.
//! - Every part is a [`Command`] of the access policy, run by [`Locked::foreground`] with the
//!   engine's checks (rust/src/mailbox.rs): a function that resets during a transfer ends it
//!   with EIO, one that disappears with ENXIO, never with success and wrong data. A transfer
//!   that fails after its first part is aborted (Abort action), for sends and receives alike,
//!   so no transfer is left open; probe aborts any that a previous binding left open.
//! - Nothing is allocated after the function accepted a message or handed one over: buffers
//!   are allocated before the first part, and the inbox of inline responses has room for one
//!   more message than it holds (`State`'s invariant), so putting a message back cannot fail.

use super::{
    InlineMsg,
    Locked,
    Swcci,
    Waiter,
    INBOX_MAX, //
};
use crate::{
    policy::{
        Command,
        Message, //
    },
    proto::{
        mailbox::{
            Event,
            IoError,
            Mapping,
            MboxError,
            RegIo,
            Response,
            Wait,
            WaitError, //
        },
        mmpt::{
            self,
            Action,
            MmptCode,
            MsgHeader,
            Part, //
        },
        regs::{
            MmptCaps,
            MmptCtrl, //
        },
    },
    sys,
    Disp, //
};
use kernel::{
    new_condvar, new_spinlock,
    prelude::*,
    sync::{
        atomic::Relaxed,
        CondVar,
        SpinLock, //
    },
    time::{
        Delta,
        Instant,
        Monotonic, //
    },
};

/// Longest a multi-part transfer may take when the caller gives no cap, in ms.
pub(crate) const TRANSFER_MS: u32 = 60_000;

/// A received message.
pub(crate) enum Received {
    /// The message.
    Message {
        /// Its type.
        msg_type: u8,
        /// Its data.
        data: KVVec<u8>,
    },
    /// A message of `len` bytes is waiting but the caller's buffer is smaller; it stays queued.
    TooBig {
        /// Its type.
        msg_type: u8,
        /// Its length.
        len: usize,
    },
    /// The function announced a message longer than the driver can ever take
    /// ([`mmpt::MAX_MESSAGE`]): it was discarded (receive transfer aborted), so that the
    /// messages after it can be received.
    Discarded {
        /// Its type.
        msg_type: u8,
        /// The length it announced.
        len: usize,
    },
}

/// Serialises the multi-part transfers of one direction ([`Swcci::mmpt_tx`],
/// [`Swcci::mmpt_rx`]).
///
/// # Invariants
///
/// `busy` is true exactly while a [`TransferGuard`] of this lock exists.
#[pin_data]
pub(crate) struct TransferLock {
    #[pin]
    busy: SpinLock<bool>,
    #[pin]
    cv: CondVar,
}

impl TransferLock {
    /// Free.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            busy <- new_spinlock!(false),
            cv <- new_condvar!(),
        })
    }

    /// Takes the lock, waiting (interruptibly) for a transfer in progress.
    ///
    /// # Errors
    ///
    /// ERESTARTSYS on a signal (nothing was sent yet: the call restarts), ENXIO once the
    /// device is unbound.
    pub(crate) fn acquire(&self, dev: &Swcci) -> Result<TransferGuard<'_>> {
        let mut busy = self.busy.lock();
        loop {
            if !dev.life.bound() {
                return Err(ENXIO);
            }
            if !*busy {
                break;
            }
            if self.cv.wait_interruptible(&mut busy) {
                return Err(ERESTARTSYS);
            }
        }
        // INVARIANT: the guard is made right after `busy` is set.
        *busy = true;
        Ok(TransferGuard(self))
    }

    /// Wakes every waiter, to look at the device again (unbind).
    pub(crate) fn wake(&self) {
        self.cv.notify_all();
    }
}

/// A held [`TransferLock`]; released when dropped.
pub(crate) struct TransferGuard<'a>(&'a TransferLock);

impl Drop for TransferGuard<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock() = false;
        self.0.cv.notify_all();
    }
}

/// The deadline of a transfer: its cap from the start.
struct Deadline {
    start: Instant<Monotonic>,
    cap: Delta,
}

impl Deadline {
    fn new(cap_ms: u32) -> Self {
        let ms = if cap_ms == 0 { TRANSFER_MS } else { cap_ms };
        Self {
            start: Instant::now(),
            cap: Delta::from_millis(i64::from(ms)),
        }
    }

    /// Whether the transfer may go on to its next part.
    ///
    /// # Errors
    ///
    /// ETIMEDOUT when its cap is spent; EINTR when the caller is being killed.
    fn check(&self) -> Result {
        if self.start.elapsed() >= self.cap {
            return Err(ETIMEDOUT);
        }
        if sys::fatal_signal_pending() {
            return Err(EINTR);
        }
        Ok(())
    }
}

impl Locked<'_> {
    /// Runs one part `cmd` of a transfer: PCI-SIG return codes are not CXL's, so they are
    /// handed back as [`MmptCode`]s.
    ///
    /// # Errors
    ///
    /// [`Self::foreground`]'s (ENXIO, EBUSY, ETIMEDOUT, EIO, EINVAL).
    fn part(&mut self, cmd: &Command<'_>, out: &mut [u8]) -> Result<(MmptCode, usize), MboxError> {
        let r: Response = self.foreground(cmd, out)?;
        Ok((MmptCode::from_raw(r.rc.raw()), r.out_len))
    }

    /// Abandons the `opcode` (Send or Receive Message) transfer of type `msg_type` in progress
    /// (Abort action): best effort (a function that is gone or whose mailbox timed out cannot
    /// take it; a reset already dropped the transfer). `msg` admits the command.
    fn abort_transfer(&mut self, msg: &Message, msg_type: u8) {
        let part = Part {
            action: Action::Abort,
            offset: 0,
            len: 0,
        };
        let mut input = [0u8; mmpt::HEADER_LEN];
        let n = if msg.opcode() == mmpt::SEND_MESSAGE {
            mmpt::send_input(&mut input, msg_type, &part, &[]).ok()
        } else {
            mmpt::receive_input(msg_type, &part).ok().map(|b| {
                input = b;
                mmpt::HEADER_LEN
            })
        };
        let Some(n) = n else { return };
        let cmd = msg.part(input.get(..n).unwrap_or(&[]));
        match self.part(&cmd, &mut []) {
            Ok((code, _)) => dev_dbg!(
                self.dev.pdev,
                "aborted a {:04x}h transfer: {}\n",
                msg.opcode(),
                Disp(&code)
            ),
            Err(e) => dev_dbg!(
                self.dev.pdev,
                "aborting a {:04x}h transfer: {}\n",
                msg.opcode(),
                Disp(&e)
            ),
        }
    }

    /// Queues an inline response (the copy is already allocated: nothing can fail here).
    fn queue_inline(&mut self, msg_type: u8, data: KVVec<u8>) {
        if self.st.inbox.len() >= INBOX_MAX {
            dev_warn!(
                self.dev.pdev,
                "{INBOX_MAX} inline MMPT responses not received: dropping the oldest\n"
            );
            if !self.st.inbox.is_empty() {
                let _ = self.st.inbox.remove(0);
            }
        }
        // The inbox has room for INBOX_MAX + 1 (State's invariant).
        if self
            .st
            .inbox
            .push_within_capacity(InlineMsg { msg_type, data })
            .is_err()
        {
            dev_warn!(self.dev.pdev, "inline MMPT response dropped: inbox full\n");
        }
    }
}

impl Swcci {
    /// The offset of the MMPT registers in the BAR.
    ///
    /// # Errors
    ///
    /// EOPNOTSUPP when the function has none.
    fn mmpt_base(&self) -> Result<usize> {
        self.mmpt.ok_or(EOPNOTSUPP)
    }

    /// The MMPT Capabilities register.
    ///
    /// # Errors
    ///
    /// EOPNOTSUPP when the function has no MMPT registers; ENXIO once the BAR is unmapped
    /// (unbind); EIO for a register outside the BAR (a driver bug).
    pub(crate) fn mmpt_caps(&self) -> Result<MmptCaps> {
        let base = self.mmpt_base()?;
        let v = self.io().with(|r| r.read32(MmptCaps::at(base)))??;
        Ok(MmptCaps(v))
    }

    /// Enables or disables the receive-message interrupt.
    ///
    /// # Errors
    ///
    /// As [`Self::mmpt_caps`], for the read of the capabilities or the write of the control
    /// register; the waiters' mode is then left as it was.
    pub(crate) fn set_mmpt_irq(&self, enable: bool) -> Result {
        let base = self.mmpt_base()?;
        let caps = self.mmpt_caps()?;
        let on = enable && caps.rx_irq();
        self.io()
            .with(|r| r.write32(MmptCtrl::at(base), MmptCtrl::default().with_rx_irq(on).0))??;
        self.irq_mmpt.store(on, Relaxed);
        Ok(())
    }

    /// Whether message arrival is signalled by interrupt.
    pub(crate) fn mmpt_irq_mode(&self) -> bool {
        self.irq_mmpt.load(Relaxed)
    }

    /// Aborts the send and receive transfers a previous binding (or another owner) may have
    /// left open (a function that stopped answering part-way, then came back): called at probe,
    /// before the node exists. `send` and `recv` admit the commands.
    pub(crate) fn mmpt_abort_open_transfers(&self, send: &Message, recv: &Message) {
        if self.mmpt.is_none() {
            return;
        }
        if let Ok(mut l) = self.lock_live() {
            l.abort_transfer(send, 0);
            l.abort_transfer(recv, 0);
        }
    }

    /// Sends message `data` of type `msg_type`, admitted as `msg`, in as many parts as the
    /// payload size needs, within `cap_ms` (0: [`TRANSFER_MS`]). Returns the device's return
    /// code: [`MmptCode::Success`], or the code of the part it refused. A multi-part transfer
    /// that the function accepted the first part of and then refused or failed a later part of
    /// (the last one included) is aborted, so no transfer is left open; a refused first part
    /// opened nothing (and may be another agent's transfer in progress), so it is not aborted.
    ///
    /// # Errors
    ///
    /// EOPNOTSUPP when the function has no MMPT registers; EMSGSIZE above
    /// [`mmpt::MAX_MESSAGE`]; ENOMEM (before anything is sent); ERESTARTSYS when a signal comes
    /// while waiting for another transfer; ENXIO when the device is unbound or failed;
    /// ETIMEDOUT when the cap is spent and EINTR when the caller is killed, between parts (the
    /// transfer is aborted); the parts' errors (ENXIO, EIO, ETIMEDOUT, EBUSY).
    pub(crate) fn mmpt_send(
        &self,
        msg: &Message,
        msg_type: u8,
        data: &[u8],
        cap_ms: u32,
    ) -> Result<MmptCode> {
        self.mmpt_base()?;
        if data.len() > mmpt::MAX_MESSAGE {
            return Err(EMSGSIZE);
        }
        let payload = self.payload_size;
        let chunk = mmpt::send_chunk(payload);
        let mut input = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        let mut out = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        // Room for an inline response, so that nothing is allocated after the function
        // accepted the message (an ENOMEM then would invite a duplicate resend).
        let mut inline = KVVec::with_capacity(payload, GFP_KERNEL)?;
        let _tx = self.mmpt_tx.acquire(self)?;
        let deadline = Deadline::new(cap_ms);
        let total = mmpt::parts(data.len(), chunk).count();
        let mut last = None;
        for (i, part) in mmpt::parts(data.len(), chunk).enumerate() {
            let opened = total > 1 && i > 0;
            if opened {
                if let Err(e) = deadline.check() {
                    if let Ok(mut l) = self.lock_live() {
                        l.abort_transfer(msg, msg_type);
                    }
                    return Err(e);
                }
            }
            let mut l = self.lock_live()?;
            let bytes = data
                .get(part.offset..part.offset.saturating_add(part.len))
                .ok_or(EINVAL)?;
            let n = mmpt::send_input(&mut input, msg_type, &part, bytes).map_err(|_| EINVAL)?;
            let cmd = msg.part(input.get(..n).unwrap_or(&[]));
            let (code, out_len) = l.part(&cmd, &mut out).inspect_err(|_| {
                if opened {
                    l.abort_transfer(msg, msg_type);
                }
            })?;
            if code != MmptCode::Success {
                if opened {
                    l.abort_transfer(msg, msg_type);
                }
                dev_dbg!(
                    self.pdev,
                    "Send Message part {i} of {total}: {}\n",
                    Disp(&code)
                );
                return Ok(code);
            }
            last = Some(out_len);
        }
        // A response the function answered inline comes back with the last part.
        if let Some(n) = last.filter(|n| *n >= mmpt::HEADER_LEN) {
            let resp = out.get(..n).unwrap_or(&[]);
            if let Ok(h) = MsgHeader::decode(resp) {
                let body = resp.get(mmpt::HEADER_LEN..).unwrap_or(&[]);
                // Within the capacity reserved above (at most the payload size): no allocation.
                if inline.extend_from_slice(body, GFP_NOWAIT).is_ok() {
                    self.lock().queue_inline(h.msg_type, inline);
                }
            }
        }
        Ok(MmptCode::Success)
    }

    /// Puts a message the caller took with [`Self::mmpt_receive`] but could not hand on (its
    /// user buffer faulted) back at the head of the queue, so that the next receive gets it:
    /// the function itself has already dequeued it. When the queue is full the newest queued
    /// response is dropped instead, with a warning. Never fails (no allocation: `State`'s
    /// invariant), so the caller's error stays EFAULT.
    pub(crate) fn mmpt_requeue(&self, msg_type: u8, data: KVVec<u8>) {
        let mut l = self.lock();
        if l.st.inbox.len() >= INBOX_MAX {
            dev_warn!(
                self.pdev,
                "{INBOX_MAX} MMPT messages not received: dropping the newest\n"
            );
            l.st.inbox.pop();
        }
        if l.st
            .inbox
            .insert_within_capacity(0, InlineMsg { msg_type, data })
            .is_err()
        {
            dev_warn!(
                self.pdev,
                "an MMPT message could not be put back: dropped\n"
            );
        }
    }

    /// One attempt to take a message: an inline response first, then the function's queue.
    /// `None` when there is none (or another agent took it first).
    ///
    /// # Errors
    ///
    /// ENXIO when the device is unbound or failed, or the Receive Message Notification
    /// register reads all ones (the device is marked failed); ERESTARTSYS when a signal comes
    /// while waiting for another receive; ENOMEM (before the first part); EIO when a part is
    /// refused or short, or the message vanished between parts (the transfer is aborted), or
    /// for a register outside the BAR; a part's errors ([`Locked::foreground`]'s: ENXIO, EBUSY,
    /// ETIMEDOUT, EIO).
    fn try_receive(&self, msg: &Message, base: usize, buf_len: usize) -> Result<Option<Received>> {
        {
            let mut l = self.lock_live()?;
            if let Some(m) = l.st.inbox.first() {
                if m.data.len() > buf_len {
                    return Ok(Some(Received::TooBig {
                        msg_type: m.msg_type,
                        len: m.data.len(),
                    }));
                }
                let m = l.st.inbox.remove(0)?;
                return Ok(Some(Received::Message {
                    msg_type: m.msg_type,
                    data: m.data,
                }));
            }
        }
        let _rx = self.mmpt_rx.acquire(self)?;
        let mut l = self.lock_live()?;
        let n = match mmpt::rx_notify(&self.io(), base) {
            Ok(n) => n,
            Err(e) => {
                let e = MboxError::Io(e);
                l.report(mmpt::RECEIVE_MESSAGE, &e);
                return Err(e.into());
            }
        };
        if !n.ready() {
            return Ok(None);
        }
        // A u32 length: it fits in usize on every kernel this builds for (32 and 64 bits).
        let len = usize::try_from(n.msg_len()).unwrap_or(usize::MAX);
        let msg_type = n.msg_type();
        if len > mmpt::MAX_MESSAGE {
            // Never deliverable: left queued it would block every receive for good. An abort
            // with no read in progress may change nothing, so the first part is read (into a
            // scratch buffer) to open the read, which the abort then discards.
            if let Ok(mut scratch) = KVVec::from_elem(0u8, self.payload_size, GFP_KERNEL) {
                let first = Part {
                    action: Action::Initiate,
                    offset: 0,
                    len: self.payload_size,
                };
                if let Ok(input) = mmpt::receive_input(msg_type, &first) {
                    // Whatever it answers, the abort follows.
                    let _ = l.part(&msg.part(&input), &mut scratch);
                }
            }
            l.abort_transfer(msg, msg_type);
            if self
                .noisy
                .allow(|n| dev_warn!(self.pdev, "{n} messages about MMPT messages suppressed\n"))
            {
                dev_warn!(
                    self.pdev,
                    "MMPT message of type {msg_type:02x}h announces {len} bytes, more than {}: discarded\n",
                    mmpt::MAX_MESSAGE
                );
            }
            return Ok(Some(Received::Discarded { msg_type, len }));
        }
        if len > buf_len {
            return Ok(Some(Received::TooBig { msg_type, len }));
        }
        let payload = self.payload_size;
        let mut data = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        let mut out = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        for part in mmpt::parts(len, payload) {
            if part.offset > 0 {
                // Let other commands in between the parts.
                drop(l);
                l = self.lock_live()?;
            }
            let input = mmpt::receive_input(msg_type, &part).map_err(|_| EINVAL)?;
            let cmd = msg.part(&input);
            let (code, out_len) = match l.part(&cmd, &mut out) {
                Ok(v) => v,
                Err(e) => {
                    // A part that failed (a mailbox timeout, a function reset) may leave the
                    // read open on the function: abort it, as a send does (best effort; a
                    // function that is gone takes nothing).
                    if !matches!(e, MboxError::Io(IoError::Gone)) {
                        l.abort_transfer(msg, msg_type);
                    }
                    return Err(e.into());
                }
            };
            let failed = match code {
                MmptCode::Success if out_len == part.len => None,
                MmptCode::Success => Some("a short part"),
                // Taken by someone else between the notification and the read.
                MmptCode::NoMessage if part.offset == 0 => return Ok(None),
                // Gone between two parts (a function reset drops its queue).
                MmptCode::NoMessage => Some("the message vanished"),
                _ => Some("refused"),
            };
            if let Some(why) = failed {
                dev_dbg!(
                    self.pdev,
                    "Receive Message at {} of {len}: {why} ({}, {out_len} bytes)\n",
                    part.offset,
                    Disp(&code)
                );
                l.abort_transfer(msg, msg_type);
                return Err(EIO);
            }
            let dst = data
                .get_mut(part.offset..part.offset.saturating_add(part.len))
                .ok_or(EIO)?;
            dst.copy_from_slice(out.get(..part.len).ok_or(EIO)?);
        }
        Ok(Some(Received::Message { msg_type, data }))
    }

    /// Receives one message of at most `buf_len` bytes, admitted as `msg`, waiting up to
    /// `timeout_ms` for one (0: do not wait).
    ///
    /// # Errors
    ///
    /// EOPNOTSUPP when the function has no MMPT registers; EAGAIN (no message, not waiting),
    /// ETIMEDOUT (none in time); ERESTARTSYS for a signal that does not kill the caller (the
    /// call restarts, with its whole timeout), EINTR for a fatal one; ENXIO once unbound (or
    /// failed); EIO for a transfer that failed part-way (aborted); else
    /// [`Self::try_receive`]'s (ENOMEM, a part's errors).
    pub(crate) fn mmpt_receive(
        &self,
        msg: &Message,
        buf_len: usize,
        timeout_ms: u32,
    ) -> Result<Received> {
        let base = self.mmpt_base()?;
        let mut w = Waiter::new(self, true);
        if let Some(r) = self.try_receive(msg, base, buf_len)? {
            return Ok(r);
        }
        if timeout_ms == 0 {
            return Err(EAGAIN);
        }
        w.begin(Event::Message, u64::from(timeout_ms) * 1000);
        let res = loop {
            match w.wait(Event::Message) {
                Ok(()) => {}
                Err(WaitError::Timeout) => {
                    break self
                        .try_receive(msg, base, buf_len)
                        .and_then(|r| r.ok_or(ETIMEDOUT));
                }
                Err(WaitError::Interrupted) => break Err(ERESTARTSYS),
                Err(WaitError::Killed) => break Err(EINTR),
                Err(WaitError::Gone) => break Err(ENXIO),
            }
            match self.try_receive(msg, base, buf_len) {
                Ok(None) => {}
                r => break r.and_then(|r| r.ok_or(EIO)),
            }
        };
        self.lock().account_more_waits(&w);
        res
    }
}
