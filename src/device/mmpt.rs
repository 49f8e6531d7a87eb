// SPDX-License-Identifier: GPL-2.0

//! Management Message Passthrough: sending and receiving whole messages over the MMB, with the
//! multi-part transfers done here (Documentation/mmpt.rst).
//!
//! A transfer holds the mailbox lock from its first part to its last, so parts of different
//! messages never interleave. A receiver waits without the lock, woken by the MMPT receive
//! interrupt or polling the Receive Message Notification register.
//!
//! Every part is a mailbox command with the engine's checks (rust/src/mailbox.rs): a function
//! that resets during a transfer ends it with EIO, one that disappears with ENXIO, never with
//! success and wrong data. A message that vanishes between the parts of a receive is EIO.

use super::{
    mbox_errno,
    InlineMsg,
    State,
    Swcci,
    Waiter,
    INBOX_MAX, //
};
use crate::proto::{
    mailbox::{
        Event,
        Mapping,
        MboxError,
        RegIo,
        Request,
        Wait,
        WaitError, //
    },
    mmpt::{
        self,
        MmptCode,
        MsgHeader, //
    },
    regs::{
        MmptCaps,
        MmptCtrl, //
    },
};
use kernel::{
    prelude::*,
    sync::atomic::Relaxed, //
};

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
}

impl Swcci {
    fn mmpt_base(&self) -> Result<usize> {
        self.mmpt.ok_or(EOPNOTSUPP)
    }

    /// The MMPT Capabilities register.
    pub(crate) fn mmpt_caps(&self) -> Result<MmptCaps> {
        let base = self.mmpt_base()?;
        let v = self
            .io()
            .with(|r| r.read32(MmptCaps::at(base)))
            .and_then(|v| v)
            .map_err(|_| ENXIO)?;
        Ok(MmptCaps(v))
    }

    /// Enables or disables the receive-message interrupt.
    pub(crate) fn set_mmpt_irq(&self, enable: bool) -> Result {
        let base = self.mmpt_base()?;
        let caps = self.mmpt_caps()?;
        let on = enable && caps.rx_irq();
        self.io()
            .with(|r| r.write32(MmptCtrl::at(base), MmptCtrl::default().with_rx_irq(on).0))
            .and_then(|v| v)
            .map_err(|_| ENXIO)?;
        self.irq_mmpt.store(on, Relaxed);
        Ok(())
    }

    /// Whether message arrival is signalled by interrupt.
    pub(crate) fn mmpt_irq_mode(&self) -> bool {
        self.irq_mmpt.load(Relaxed)
    }

    /// Runs one PCI-SIG MMB command under the lock `st`, calling `before_send` right before
    /// it is written to the device.
    fn pci_sig_command(
        &self,
        st: &mut State,
        opcode: u16,
        input: &[u8],
        out: &mut [u8],
        before_send: impl FnOnce(),
    ) -> Result<(MmptCode, usize), MboxError> {
        let _busy = self.busy_guard();
        let mut w = Waiter::new(self, false);
        let req = Request {
            opcode_vendor: mmpt::VENDOR_PCI_SIG,
            ..Request::new(opcode, input)
        };
        st.stats.commands += 1;
        let res = st
            .mbox
            .start_with(&self.io(), &mut w, &req, out, before_send);
        self.note_irq_misses(st, &w);
        self.account_waits(st, &w);
        let r = res.inspect_err(|e| {
            st.stats.count_error(e);
            self.report(st, opcode, e);
        })?;
        // PCI-SIG return codes are not CXL's: they are not counted by return code.
        Ok((MmptCode::from_raw(r.rc.raw()), r.out_len))
    }

    /// Sends one message of type `msg_type`, in as many parts as the payload size needs,
    /// calling `before_send` right before each part is written to the device (the caller
    /// taints there). Returns the device's return code: [`MmptCode::Success`], or the code of
    /// the part it refused. A multi-part transfer that the function accepted the first part of
    /// and then refused or failed a later part of (the last one included) is aborted, so no
    /// transfer is left open; a refused first part opened nothing (and may be another agent's
    /// transfer in progress), so it is not aborted.
    pub(crate) fn mmpt_send(
        &self,
        msg_type: u8,
        data: &[u8],
        before_send: &impl Fn(),
    ) -> Result<MmptCode> {
        self.mmpt_base()?;
        if data.len() > mmpt::MAX_MESSAGE {
            return Err(EMSGSIZE);
        }
        let payload = self.payload_size;
        let chunk = mmpt::send_chunk(payload);
        let mut input = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        let mut out = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        let mut st = self.lock_live().map_err(|e| mbox_errno(&e))?;
        let mut last = None;
        let total = mmpt::parts(data.len(), chunk).count();
        for (i, part) in mmpt::parts(data.len(), chunk).enumerate() {
            let bytes = data
                .get(part.offset..part.offset.saturating_add(part.len))
                .ok_or(EINVAL)?;
            let n = mmpt::send_input(&mut input, msg_type, &part, bytes).map_err(|_| EINVAL)?;
            let opened = total > 1 && i > 0;
            let (code, out_len) = self
                .pci_sig_command(
                    &mut st,
                    mmpt::SEND_MESSAGE,
                    input.get(..n).unwrap_or(&[]),
                    &mut out,
                    before_send,
                )
                .map_err(|e| {
                    if opened {
                        self.abort_send(&mut st, msg_type, &mut input, &mut out);
                    }
                    mbox_errno(&e)
                })?;
            if code != MmptCode::Success {
                if opened {
                    self.abort_send(&mut st, msg_type, &mut input, &mut out);
                }
                dev_dbg!(
                    self.pdev,
                    "Send Message part {i} of {total}: {}\n",
                    crate::Disp(&code)
                );
                return Ok(code);
            }
            last = Some(out_len);
        }
        // A response the function answered inline comes back with the last part.
        if let Some(n) = last.filter(|n| *n >= mmpt::HEADER_LEN) {
            let resp = out.get(..n).unwrap_or(&[]);
            if let Ok(h) = MsgHeader::decode(resp) {
                self.queue_inline(
                    &mut st,
                    h.msg_type,
                    resp.get(mmpt::HEADER_LEN..).unwrap_or(&[]),
                )?;
            }
        }
        Ok(MmptCode::Success)
    }

    /// Sends Send Message with the Abort action: best effort (a function that is gone or
    /// whose mailbox timed out cannot take it; a reset already dropped the transfer).
    fn abort_send(&self, st: &mut State, msg_type: u8, input: &mut [u8], out: &mut [u8]) {
        let part = mmpt::Part {
            action: mmpt::Action::Abort,
            offset: 0,
            len: 0,
        };
        if let Ok(n) = mmpt::send_input(input, msg_type, &part, &[]) {
            let input = input.get(..n).unwrap_or(&[]);
            if let Err(e) = self.pci_sig_command(st, mmpt::SEND_MESSAGE, input, out, || ()) {
                dev_dbg!(
                    self.pdev,
                    "aborting a Send Message transfer: {}\n",
                    crate::Disp(&e)
                );
            }
        }
    }

    /// Puts a message the caller took with [`Self::mmpt_receive`] but could not hand on (its
    /// user buffer faulted) back at the head of the queue, so that the next receive gets it:
    /// the function itself has already dequeued it. When the queue is full the newest queued
    /// response is dropped instead, with a warning.
    pub(crate) fn mmpt_requeue(&self, msg_type: u8, data: KVVec<u8>) -> Result {
        let mut st = self.state.lock();
        if st.inbox.len() >= INBOX_MAX {
            dev_warn!(
                self.pdev,
                "{INBOX_MAX} MMPT messages not received: dropping the newest\n"
            );
            st.inbox.pop();
        }
        st.inbox.reserve(1, GFP_KERNEL)?;
        st.inbox
            .insert_within_capacity(0, InlineMsg { msg_type, data })
            .map_err(|_| ENOMEM)
    }

    fn queue_inline(&self, st: &mut State, msg_type: u8, data: &[u8]) -> Result {
        if st.inbox.len() >= INBOX_MAX {
            dev_warn!(
                self.pdev,
                "{INBOX_MAX} inline MMPT responses not received: dropping the oldest\n"
            );
            st.inbox.remove(0)?;
        }
        let mut copy = KVVec::with_capacity(data.len(), GFP_KERNEL)?;
        copy.extend_from_slice(data, GFP_KERNEL)?;
        st.inbox.push(
            InlineMsg {
                msg_type,
                data: copy,
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// One attempt to take a message: an inline response first, then the function's queue.
    fn try_receive(&self, base: usize, buf_len: usize) -> Result<Option<Received>> {
        let mut st = self.lock_live().map_err(|e| mbox_errno(&e))?;
        if let Some(m) = st.inbox.first() {
            if m.data.len() > buf_len {
                return Ok(Some(Received::TooBig {
                    msg_type: m.msg_type,
                    len: m.data.len(),
                }));
            }
            let m = st.inbox.remove(0)?;
            return Ok(Some(Received::Message {
                msg_type: m.msg_type,
                data: m.data,
            }));
        }
        let n = match mmpt::rx_notify(&self.io(), base) {
            Ok(n) => n,
            Err(e) => {
                self.report(&mut st, mmpt::RECEIVE_MESSAGE, &MboxError::Io(e));
                return Err(ENXIO);
            }
        };
        if !n.ready() {
            return Ok(None);
        }
        // A u32 length: it fits in usize on every kernel this builds for (32 and 64 bits).
        let len = usize::try_from(n.msg_len()).unwrap_or(usize::MAX);
        let msg_type = n.msg_type();
        if len > buf_len || len > mmpt::MAX_MESSAGE {
            return Ok(Some(Received::TooBig { msg_type, len }));
        }
        let payload = self.payload_size;
        let mut data = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        let mut out = KVVec::from_elem(0u8, payload, GFP_KERNEL)?;
        for part in mmpt::parts(len, payload) {
            let input = mmpt::receive_input(msg_type, &part).map_err(|_| EINVAL)?;
            let (code, out_len) = self
                .pci_sig_command(&mut st, mmpt::RECEIVE_MESSAGE, &input, &mut out, || ())
                .map_err(|e| mbox_errno(&e))?;
            match code {
                MmptCode::Success => {}
                // Taken by someone else between the notification and the read.
                MmptCode::NoMessage if part.offset == 0 => return Ok(None),
                // Gone between two parts (a function reset drops its queue).
                MmptCode::NoMessage => {
                    dev_warn!(
                        self.pdev,
                        "Receive Message: the message vanished after {} of {len} bytes\n",
                        part.offset
                    );
                    return Err(EIO);
                }
                code => {
                    dev_dbg!(
                        self.pdev,
                        "Receive Message at {}: {}\n",
                        part.offset,
                        crate::Disp(&code)
                    );
                    return Err(EIO);
                }
            }
            if out_len != part.len {
                dev_dbg!(
                    self.pdev,
                    "Receive Message at {}: {out_len} bytes, expected {}\n",
                    part.offset,
                    part.len
                );
                return Err(EIO);
            }
            let dst = data
                .get_mut(part.offset..part.offset.saturating_add(part.len))
                .ok_or(EIO)?;
            dst.copy_from_slice(out.get(..part.len).ok_or(EIO)?);
        }
        Ok(Some(Received::Message { msg_type, data }))
    }

    /// Receives one message of at most `buf_len` bytes, waiting up to `timeout_ms` for one
    /// (0: do not wait). A signal ends the wait with EINTR; no message in time is ETIMEDOUT
    /// (EAGAIN when not waiting).
    pub(crate) fn mmpt_receive(&self, buf_len: usize, timeout_ms: u32) -> Result<Received> {
        let base = self.mmpt_base()?;
        let mut w = Waiter::new(self, true);
        if let Some(r) = self.try_receive(base, buf_len)? {
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
                        .try_receive(base, buf_len)
                        .and_then(|r| r.ok_or(ETIMEDOUT));
                }
                Err(WaitError::Interrupted) => break Err(EINTR),
                Err(WaitError::Gone) => break Err(ENXIO),
            }
            match self.try_receive(base, buf_len) {
                Ok(None) => {}
                r => break r.and_then(|r| r.ok_or(EIO)),
            }
        };
        self.state.lock().stats.add_waits(&w.counts);
        res
    }
}
