// SPDX-License-Identifier: GPL-2.0

//! The device node: `/dev/cxl/switchN` with the ioctl ABI of `<linux/cxl_mem.h>`
//! (`CXL_MEM_SEND_COMMAND` with `CXL_MEM_COMMAND_ID_RAW`, `CXL_MEM_QUERY_COMMANDS`) and this
//! driver's own ioctls (`include/uapi/linux/cxl_swcci.h`). Documentation/abi.rst describes every
//! ioctl and errno.
//!
//! Open files hold the device object, not the PCI binding: after unbind every ioctl fails with
//! ENXIO, and the module stays loaded (rmmod fails with EWOULDBLOCK) until the last file is closed.

use crate::{
    device::{mbox_errno, Kind, Received, Swcci},
    policy,
    proto::{
        mailbox::{BgPolicy, MboxError},
        uapi::{
            put_cstr, CxlCommandInfo, CxlMemQueryCommands, CxlSendCommand, SwcciBgPolicy,
            SwcciInfo, SwcciMmbCommand, SwcciMmptMsg, Wire, CXL_MEM_COMMAND_FLAG_ENABLED,
            CXL_MEM_COMMAND_FLAG_MASK, CXL_MEM_COMMAND_ID_RAW, CXL_MEM_QUERY_COMMANDS,
            CXL_MEM_SEND_COMMAND, SWCCI_BG_ABORT_ON_SIGNAL, SWCCI_BG_ABORT_ON_TIMEOUT,
            SWCCI_BG_FLAGS, SWCCI_BG_TIMEOUT_MAX_MS, SWCCI_BG_TIMEOUT_MIN_MS, SWCCI_INFO_BG_IRQ,
            SWCCI_INFO_CXL, SWCCI_INFO_IDENTIFIED, SWCCI_INFO_IRQ, SWCCI_INFO_MMB, SWCCI_INFO_MMPT,
            SWCCI_IOCTL_BG_POLICY, SWCCI_IOCTL_INFO, SWCCI_KIND_MMPT, SWCCI_KIND_SWITCH_CCI,
            SWCCI_MMB_SEND_COMMAND, SWCCI_MMPT_RECV, SWCCI_MMPT_SEND, SWCCI_MMPT_TIMEOUT_MAX_MS,
            SWCCI_VERSION,
        },
    },
    Disp,
};
use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    uaccess::{UserPtr, UserSlice},
};

/// Most nodes of one kind.
pub(crate) const MAX_NODES: usize = 32;

macro_rules! node_names {
    ($prefix:literal: $($n:literal)*) => {
        [$(kernel::c_str!(concat!($prefix, $n)),)*]
    };
}

/// Node names below /dev: `cxl/switchN` (CXL tools scan /dev/cxl/).
static SWITCH_NAMES: [&CStr; MAX_NODES] = node_names!("cxl/switch":
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);

/// Node names of MMPT functions: `swcci/mmptN`. They carry non-CXL management messages, so
/// they stay out of /dev/cxl/, which CXL tools scan.
static MMPT_NAMES: [&CStr; MAX_NODES] = node_names!("swcci/mmpt":
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);

/// Node numbers in use, one bit each, per kind.
static SWITCH_IDS: Atomic<u32> = Atomic::new(0);
static MMPT_IDS: Atomic<u32> = Atomic::new(0);

/// A node number, released when dropped.
pub(crate) struct NodeId {
    kind: Kind,
    id: u32,
}

impl NodeId {
    fn table(kind: Kind) -> (&'static Atomic<u32>, &'static [&'static CStr; MAX_NODES]) {
        match kind {
            Kind::SwitchCci => (&SWITCH_IDS, &SWITCH_NAMES),
            Kind::Mmpt => (&MMPT_IDS, &MMPT_NAMES),
        }
    }

    /// Takes the lowest free number of `kind`.
    pub(crate) fn alloc(kind: Kind) -> Result<Self> {
        let (ids, _) = Self::table(kind);
        let mut cur = ids.load(Relaxed);
        loop {
            let id = (!cur).trailing_zeros();
            if id as usize >= MAX_NODES {
                return Err(ENOSPC);
            }
            match ids.cmpxchg(cur, cur | (1 << id), Relaxed) {
                Ok(_) => return Ok(Self { kind, id }),
                Err(now) => cur = now,
            }
        }
    }

    /// The node name below /dev.
    pub(crate) fn name(&self) -> &'static CStr {
        let (_, names) = Self::table(self.kind);
        names
            .get(self.id as usize)
            .copied()
            .unwrap_or(c"swcci/unnamed")
    }
}

impl Drop for NodeId {
    fn drop(&mut self) {
        let (ids, _) = Self::table(self.kind);
        let mut cur = ids.load(Relaxed);
        while let Err(now) = ids.cmpxchg(cur, cur & !(1 << self.id), Relaxed) {
            cur = now;
        }
    }
}

/// A registered device node.
#[pin_data]
pub(crate) struct Node {
    // Declared first so that it is deregistered first: no open can start after that.
    #[pin]
    reg: MiscDeviceRegistration<SwcciFile>,
    // Released after the registration, so a new device cannot take the name too early.
    _id: NodeId,
    dev: Arc<Swcci>,
}

impl Node {
    /// Registers the node for `dev` under the name of `id`.
    pub(crate) fn register(dev: Arc<Swcci>, id: NodeId) -> Result<Pin<KBox<Self>>> {
        let name = id.name();
        KBox::pin_init(
            // Fields are initialised in this order: `dev` is in place before the node becomes
            // visible and `open` can run.
            try_pin_init!(Self {
                dev,
                _id: id,
                reg <- MiscDeviceRegistration::register(MiscDeviceOptions { name }),
            }? Error),
            GFP_KERNEL,
        )
    }
}

/// One open file.
pub(crate) struct SwcciFile {
    dev: Arc<Swcci>,
    bg_timeout_ms: Atomic<u32>,
    bg_flags: Atomic<u32>,
}

fn user(addr: u64, len: usize) -> Result<UserSlice> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), len))
}

/// Room for the largest ioctl argument structure.
const ARG_MAX: usize = 256;
const _: () = assert!(
    CxlSendCommand::SIZE <= ARG_MAX
        && CxlMemQueryCommands::SIZE <= ARG_MAX
        && SwcciInfo::SIZE <= ARG_MAX
        && SwcciBgPolicy::SIZE <= ARG_MAX
        && SwcciMmptMsg::SIZE <= ARG_MAX
        && SwcciMmbCommand::SIZE <= ARG_MAX
);

/// Reads the ioctl argument structure at `arg`.
fn read_arg<T: Wire>(arg: u64) -> Result<T> {
    let mut buf = [0u8; ARG_MAX];
    let b = buf.get_mut(..T::SIZE).ok_or(EINVAL)?;
    user(arg, T::SIZE)?.reader().read_slice(b)?;
    T::from_bytes(b).ok_or(EINVAL)
}

/// Writes the ioctl argument structure `v` to `arg`.
fn write_arg<T: Wire>(arg: u64, v: &T) -> Result {
    let mut buf = [0u8; ARG_MAX];
    let b = buf.get_mut(..T::SIZE).ok_or(EINVAL)?;
    v.to_bytes(b).ok_or(EINVAL)?;
    user(arg, T::SIZE)?.writer().write_slice(b)
}

#[vtable]
impl MiscDevice for SwcciFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        // SAFETY: Every `MiscDeviceRegistration<SwcciFile>` is the `reg` field of a pinned
        // `Node` (only `Node::register` creates one). `open` runs under the misc device lock,
        // which `misc_deregister` (called when the `Node` drops) also takes, so the `Node` is
        // alive for the duration of this call.
        let node =
            unsafe { &*kernel::container_of!(core::ptr::from_ref(misc).cast_mut(), Node, reg) };
        let timeout = crate::module_parameters::bg_timeout_ms
            .value()
            .clamp(SWCCI_BG_TIMEOUT_MIN_MS, SWCCI_BG_TIMEOUT_MAX_MS);
        Ok(KBox::new(
            Self {
                dev: node.dev.clone(),
                bg_timeout_ms: Atomic::new(timeout),
                bg_flags: Atomic::new(SWCCI_BG_ABORT_ON_TIMEOUT),
            },
            GFP_KERNEL,
        )?)
    }

    fn ioctl(me: &SwcciFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let arg = arg as u64;
        let known = matches!(
            cmd,
            CXL_MEM_SEND_COMMAND
                | CXL_MEM_QUERY_COMMANDS
                | SWCCI_IOCTL_INFO
                | SWCCI_IOCTL_BG_POLICY
        );
        // After unbind the file only holds a dead device object: every known ioctl fails
        // with ENXIO (a command racing with unbind gets ENXIO from the mailbox lock).
        if known && me.dev.state.lock().gone {
            return Err(ENXIO);
        }
        match cmd {
            CXL_MEM_SEND_COMMAND => me.send(arg),
            CXL_MEM_QUERY_COMMANDS => me.query(arg),
            SWCCI_IOCTL_INFO => me.info(arg),
            SWCCI_IOCTL_BG_POLICY => me.bg_policy(arg),
            SWCCI_MMPT_SEND => me.mmpt_send(arg),
            SWCCI_MMPT_RECV => me.mmpt_recv(arg),
            SWCCI_MMB_SEND_COMMAND => me.mmb_command(arg),
            _ => Err(ENOTTY),
        }?;
        Ok(0)
    }
}

impl SwcciFile {
    fn policy(&self) -> BgPolicy {
        let flags = self.bg_flags.load(Relaxed);
        BgPolicy {
            timeout_us: u64::from(self.bg_timeout_ms.load(Relaxed)) * 1000,
            abort_on_timeout: flags & SWCCI_BG_ABORT_ON_TIMEOUT != 0,
            abort_on_interrupt: flags & SWCCI_BG_ABORT_ON_SIGNAL != 0,
        }
    }

    /// Runs raw command `opcode` of `opcode_vendor` with the user's input at `input`
    /// (`in_len` bytes) and up to `out_len` output bytes to `output`; the checks common to
    /// every raw path, in the order of Documentation/abi.rst, after the argument checks.
    fn raw(
        &self,
        opcode: u16,
        opcode_vendor: u16,
        input: u64,
        in_len: usize,
        output: u64,
        out_len: usize,
    ) -> Result<crate::proto::mailbox::Response> {
        let dev = &*self.dev;
        let payload = dev.state.lock().mbox.payload_size();
        if in_len > payload || out_len > payload {
            return Err(EINVAL);
        }
        policy::check_raw(dev, opcode_vendor, opcode)?;

        // Read the whole input before the device is touched.
        let mut data = KVVec::from_elem(0u8, in_len, GFP_KERNEL)?;
        user(input, in_len)?.reader().read_slice(&mut data)?;
        let mut out = KVVec::from_elem(0u8, out_len, GFP_KERNEL)?;

        policy::taint_for(
            dev,
            opcode_vendor,
            opcode,
            &data,
            &dev.state.lock().info.cel,
        );
        let r = dev
            .execute(opcode, opcode_vendor, &data, &mut out, self.policy(), true)
            .map_err(|e| {
                dev_dbg!(dev.pdev, "raw command {opcode:04x}h: {}\n", Disp(&e));
                if let MboxError::Background { .. } = e {
                    if e.errno() == crate::proto::rc::Errno::TimedOut {
                        dev_info!(dev.pdev, "raw command {opcode:04x}h: {}\n", Disp(&e));
                    }
                }
                mbox_errno(&e)
            })?;
        user(output, r.out_len)?
            .writer()
            .write_slice(out.get(..r.out_len).unwrap_or(&[]))?;
        Ok(r)
    }

    /// `CXL_MEM_SEND_COMMAND`.
    fn send(&self, arg: u64) -> Result {
        let mut cmd: CxlSendCommand = read_arg(arg)?;
        if cmd.id != CXL_MEM_COMMAND_ID_RAW {
            return Err(ENOTTY);
        }
        if cmd.flags & !CXL_MEM_COMMAND_FLAG_MASK != 0
            || cmd.raw_rsvd != 0
            || cmd.input.rsvd != 0
            || cmd.output.rsvd != 0
        {
            return Err(EINVAL);
        }
        let (in_len, out_len) = (cmd.input.size as usize, cmd.output.size as usize);
        let r = self.raw(
            cmd.raw_opcode,
            0,
            cmd.input.payload,
            in_len,
            cmd.output.payload,
            out_len,
        )?;
        cmd.retval = u32::from(r.rc.raw());
        cmd.output.size = r.out_len as u32;
        write_arg(arg, &cmd)
    }

    /// `SWCCI_MMB_SEND_COMMAND`: a raw MMB command with an explicit opcode vendor id.
    fn mmb_command(&self, arg: u64) -> Result {
        let mut cmd: SwcciMmbCommand = read_arg(arg)?;
        if cmd.rsvd != 0 || cmd.input.rsvd != 0 || cmd.output.rsvd != 0 {
            return Err(EINVAL);
        }
        if cmd.opcode_vendor != 0 && !self.dev.state.lock().mbox.flavor().mmb {
            // A CXL mailbox found through the Register Locator has no opcode vendor field.
            return Err(EOPNOTSUPP);
        }
        let (in_len, out_len) = (cmd.input.size as usize, cmd.output.size as usize);
        let r = self.raw(
            cmd.opcode,
            cmd.opcode_vendor,
            cmd.input.payload,
            in_len,
            cmd.output.payload,
            out_len,
        )?;
        cmd.retval = u32::from(r.rc.raw());
        cmd.vendor_status = u32::from(r.vendor_status);
        cmd.output.size = r.out_len as u32;
        write_arg(arg, &cmd)
    }

    /// `SWCCI_MMPT_SEND`.
    fn mmpt_send(&self, arg: u64) -> Result {
        let dev = &*self.dev;
        let mut m: SwcciMmptMsg = read_arg(arg)?;
        if m.rsvd0 != [0; 3] || m.timeout_ms != 0 {
            return Err(EINVAL);
        }
        dev.mmpt.ok_or(EOPNOTSUPP)?;
        let len = m.len as usize;
        if len > crate::proto::mmpt::MAX_MESSAGE {
            return Err(EMSGSIZE);
        }
        policy::check_raw(
            dev,
            crate::proto::mmpt::VENDOR_PCI_SIG,
            crate::proto::mmpt::SEND_MESSAGE,
        )?;
        let mut data = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        user(m.data, len)?.reader().read_slice(&mut data)?;
        policy::taint_message(dev, m.msg_type);
        let code = dev.mmpt_send(m.msg_type, &data)?;
        m.retval = u32::from(code.raw());
        write_arg(arg, &m)
    }

    /// `SWCCI_MMPT_RECV`.
    fn mmpt_recv(&self, arg: u64) -> Result {
        let dev = &*self.dev;
        let mut m: SwcciMmptMsg = read_arg(arg)?;
        if m.rsvd0 != [0; 3] || m.timeout_ms > SWCCI_MMPT_TIMEOUT_MAX_MS {
            return Err(EINVAL);
        }
        dev.mmpt.ok_or(EOPNOTSUPP)?;
        policy::check_raw(
            dev,
            crate::proto::mmpt::VENDOR_PCI_SIG,
            crate::proto::mmpt::RECEIVE_MESSAGE,
        )?;
        let buf = m.len as usize;
        let result = dev.mmpt_receive(buf, m.timeout_ms);
        let res = match result? {
            Received::Message { msg_type, data } => {
                user(m.data, data.len())?.writer().write_slice(&data)?;
                m.msg_type = msg_type;
                m.len = data.len() as u32;
                m.retval = 0;
                Ok(())
            }
            Received::TooBig { msg_type, len } => {
                m.msg_type = msg_type;
                m.len = len as u32;
                Err(EMSGSIZE)
            }
        };
        write_arg(arg, &m)?;
        res
    }

    /// `CXL_MEM_QUERY_COMMANDS`: the commands this node carries. Only raw commands: sizes are
    /// the payload size (the most a raw command can carry either way).
    fn query(&self, arg: u64) -> Result {
        let q: CxlMemQueryCommands = read_arg(arg)?;
        let payload = self.dev.state.lock().mbox.payload_size() as i32;
        let commands = [CxlCommandInfo {
            id: CXL_MEM_COMMAND_ID_RAW,
            flags: CXL_MEM_COMMAND_FLAG_ENABLED,
            size_in: payload,
            size_out: payload,
        }];
        if q.n_commands == 0 {
            let count = CxlMemQueryCommands {
                n_commands: commands.len() as u32,
                rsvd: 0,
            };
            return write_arg(arg, &count);
        }
        let n = (q.n_commands as usize).min(commands.len());
        let at = arg
            .checked_add(CxlMemQueryCommands::SIZE as u64)
            .ok_or(EFAULT)?;
        let mut w = user(at, n * CxlCommandInfo::SIZE)?.writer();
        for c in commands.iter().take(n) {
            let mut b = [0u8; CxlCommandInfo::SIZE];
            c.to_bytes(&mut b).ok_or(EINVAL)?;
            w.write_slice(&b)?;
        }
        Ok(())
    }

    /// `SWCCI_IOCTL_INFO`.
    fn info(&self, arg: u64) -> Result {
        write_arg(arg, &Self::info_of(&self.dev))
    }

    /// What `SWCCI_IOCTL_INFO` returns for `dev` (also the device data of fwctl's
    /// `FWCTL_INFO`, Documentation/fwctl.rst).
    pub(crate) fn info_of(dev: &Swcci) -> SwcciInfo {
        let mut info = SwcciInfo {
            version: SWCCI_VERSION,
            kind: match dev.kind {
                Kind::SwitchCci => SWCCI_KIND_SWITCH_CCI,
                Kind::Mmpt => SWCCI_KIND_MMPT,
            },
            pci_vendor: dev.pdev.vendor_id().as_raw(),
            pci_device: dev.pdev.device_id(),
            ..SwcciInfo::default()
        };
        {
            let st = dev.state.lock();
            info.payload_size = st.mbox.payload_size() as u32;
            info.cel_entries = (st.info.cel.len() / 4) as u32;
            let flavor = st.mbox.flavor();
            info.flags |= if flavor.mmb { SWCCI_INFO_MMB } else { 0 }
                | if flavor.cxl { SWCCI_INFO_CXL } else { 0 };
            if let Some(id) = st.info.ident {
                info.flags |= SWCCI_INFO_IDENTIFIED;
                info.vendor_id = id.vendor_id;
                info.device_id = id.device_id;
                info.subsys_vendor_id = id.subsys_vendor_id;
                info.subsys_id = id.subsys_id;
                info.serial = id.serial;
                info.max_msg_size_log2 = id.max_msg_size_log2;
                info.component_type = id.component_type.raw();
            }
        }
        if dev.irq_mode() {
            info.flags |= SWCCI_INFO_IRQ;
        }
        if dev.bg_irq_mode() {
            info.flags |= SWCCI_INFO_BG_IRQ;
        }
        if dev.mmpt.is_some() {
            info.flags |= SWCCI_INFO_MMPT;
        }
        put_cstr(&mut info.pci_addr, dev.pdev.as_ref().name().to_bytes());
        put_cstr(&mut info.node, dev.node_name.to_bytes());
        info
    }

    /// `SWCCI_IOCTL_BG_POLICY`.
    fn bg_policy(&self, arg: u64) -> Result {
        let p: SwcciBgPolicy = read_arg(arg)?;
        if p.flags & !SWCCI_BG_FLAGS != 0 {
            return Err(EINVAL);
        }
        if p.timeout_ms != 0 {
            if !(SWCCI_BG_TIMEOUT_MIN_MS..=SWCCI_BG_TIMEOUT_MAX_MS).contains(&p.timeout_ms) {
                return Err(EINVAL);
            }
            self.bg_timeout_ms.store(p.timeout_ms, Relaxed);
        }
        self.bg_flags.store(p.flags, Relaxed);
        let now = SwcciBgPolicy {
            timeout_ms: self.bg_timeout_ms.load(Relaxed),
            flags: self.bg_flags.load(Relaxed),
        };
        write_arg(arg, &now)
    }
}
