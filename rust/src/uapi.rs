// SPDX-License-Identifier: GPL-2.0

//! The userspace ABI: `CXL_MEM_SEND_COMMAND` and `CXL_MEM_QUERY_COMMANDS` exactly as Linux's
//! `<linux/cxl_mem.h>` defines them (so that libcxlmi and cxl-fmapi-tests work unchanged), plus
//! this driver's own ioctls (`include/uapi/linux/cxl_swcci.h`).
//!
//! The structures are `#[repr(C)]` mirrors of the C ones, laid out identically on 32- and 64-bit
//! ABIs (every 64-bit field is naturally aligned by explicit padding), so 32-bit processes use
//! the same ioctl numbers and layouts. A host test compiles the C header and compares sizes,
//! offsets and ioctl numbers. Conversions to and from bytes are explicit (native endian, as
//! ioctl structures are), so neither side needs `unsafe`.

use core::mem::{offset_of, size_of};

/// `_IOC` direction bits (asm-generic: x86, arm, arm64, riscv).
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32 & 0x3fff) << 16) | (ty << 8) | nr
}

/// `_IOR(ty, nr, size)`.
pub const fn ior(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOW(ty, nr, size)`.
pub const fn iow(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOWR(ty, nr, size)`.
pub const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// The ioctl type of the CXL memory device ABI, shared by this driver's ioctls.
pub const CXL_IOC_TYPE: u32 = 0xce;

/// `CXL_MEM_COMMAND_ID_RAW`.
pub const CXL_MEM_COMMAND_ID_RAW: u32 = 2;
/// Flag of [`CxlCommandInfo::flags`]: the command is enabled.
pub const CXL_MEM_COMMAND_FLAG_ENABLED: u32 = 1 << 0;
/// Flag of [`CxlCommandInfo::flags`]: the kernel owns the command exclusively.
pub const CXL_MEM_COMMAND_FLAG_EXCLUSIVE: u32 = 1 << 1;
/// Flags a send command may carry (Linux accepts these and ignores them).
pub const CXL_MEM_COMMAND_FLAG_MASK: u32 =
    CXL_MEM_COMMAND_FLAG_ENABLED | CXL_MEM_COMMAND_FLAG_EXCLUSIVE;

/// `struct cxl_command_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlCommandInfo {
    /// Command id.
    pub id: u32,
    /// `CXL_MEM_COMMAND_FLAG_*`.
    pub flags: u32,
    /// Input size, -1 for variable.
    pub size_in: i32,
    /// Output size, -1 for variable.
    pub size_out: i32,
}

/// `struct cxl_mem_query_commands` without its flexible array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlMemQueryCommands {
    /// In: entries the caller has room for (0 asks for the count). Out (when 0): the count.
    pub n_commands: u32,
    /// Reserved.
    pub rsvd: u32,
}

/// The `in`/`out` member of `struct cxl_send_command`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlPayload {
    /// Size in bytes.
    pub size: u32,
    /// Reserved, must be zero.
    pub rsvd: u32,
    /// User pointer.
    pub payload: u64,
}

/// `struct cxl_send_command` (the anonymous union holds the raw opcode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlSendCommand {
    /// Command id: only [`CXL_MEM_COMMAND_ID_RAW`] on this driver.
    pub id: u32,
    /// Flags within [`CXL_MEM_COMMAND_FLAG_MASK`].
    pub flags: u32,
    /// `raw.opcode`.
    pub raw_opcode: u16,
    /// `raw.rsvd`, must be zero.
    pub raw_rsvd: u16,
    /// Out: the device's return code.
    pub retval: u32,
    /// Input payload.
    pub input: CxlPayload,
    /// Output payload; `size` is rewritten with the bytes returned.
    pub output: CxlPayload,
}

/// `CXL_MEM_QUERY_COMMANDS`.
pub const CXL_MEM_QUERY_COMMANDS: u32 = ior(CXL_IOC_TYPE, 1, size_of::<CxlMemQueryCommands>());
/// `CXL_MEM_SEND_COMMAND`.
pub const CXL_MEM_SEND_COMMAND: u32 = iowr(CXL_IOC_TYPE, 2, size_of::<CxlSendCommand>());

/// Driver version reported by [`SwcciInfo::version`]: major << 16 | minor << 8 | patch.
pub const SWCCI_VERSION: u32 = 0x0001_0000;

/// [`SwcciInfo::kind`]: a CXL switch mailbox CCI (`/dev/cxl/switchN`).
pub const SWCCI_KIND_SWITCH_CCI: u32 = 1;
/// [`SwcciInfo::kind`]: any other function with a PCIe MMB, with or without MMPT registers
/// (`/dev/swcci/mmptN`).
pub const SWCCI_KIND_MMB: u32 = 2;
/// The old name of [`SWCCI_KIND_MMB`], kept for source compatibility.
pub const SWCCI_KIND_MMPT: u32 = SWCCI_KIND_MMB;

/// [`SwcciInfo::flags`]: doorbell completion is signalled by an interrupt (else polled).
pub const SWCCI_INFO_IRQ: u32 = 1 << 0;
/// [`SwcciInfo::flags`]: background completion is signalled by an interrupt.
pub const SWCCI_INFO_BG_IRQ: u32 = 1 << 1;
/// [`SwcciInfo::flags`]: the mailbox was found as a PCIe MMB (MRBL -> MCAP).
pub const SWCCI_INFO_MMB: u32 = 1 << 2;
/// [`SwcciInfo::flags`]: the function has MMPT registers.
pub const SWCCI_INFO_MMPT: u32 = 1 << 3;
/// [`SwcciInfo::flags`]: the mailbox has the CXL extensions (background commands).
pub const SWCCI_INFO_CXL: u32 = 1 << 4;
/// [`SwcciInfo::flags`]: Identify succeeded and the identity fields are valid.
pub const SWCCI_INFO_IDENTIFIED: u32 = 1 << 5;

/// `struct swcci_info`: what `SWCCI_IOCTL_INFO` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwcciInfo {
    /// [`SWCCI_VERSION`].
    pub version: u32,
    /// `SWCCI_KIND_*`.
    pub kind: u32,
    /// `SWCCI_INFO_*`.
    pub flags: u32,
    /// Mailbox payload size in bytes.
    pub payload_size: u32,
    /// Entries in the Command Effects Log read at probe.
    pub cel_entries: u32,
    /// PCI vendor id of the function.
    pub pci_vendor: u16,
    /// PCI device id of the function.
    pub pci_device: u16,
    /// Identify: vendor id.
    pub vendor_id: u16,
    /// Identify: device id.
    pub device_id: u16,
    /// Identify: subsystem vendor id.
    pub subsys_vendor_id: u16,
    /// Identify: subsystem id.
    pub subsys_id: u16,
    /// Identify: serial number.
    pub serial: u64,
    /// Identify: max message size (log2).
    pub max_msg_size_log2: u8,
    /// Identify: component type.
    pub component_type: u8,
    /// Reserved.
    pub rsvd0: [u8; 6],
    /// PCI address, `DDDD:BB:DD.F`, NUL-terminated.
    pub pci_addr: [u8; 32],
    /// Device node name below /dev, e.g. `cxl/switch0`, NUL-terminated.
    pub node: [u8; 32],
    /// Reserved for extensions.
    pub rsvd1: [u64; 4],
}

/// `SWCCI_IOCTL_INFO`.
pub const SWCCI_IOCTL_INFO: u32 = ior(CXL_IOC_TYPE, 0xa0, size_of::<SwcciInfo>());

/// [`SwcciBgPolicy::flags`]: request an abort when the wait times out.
pub const SWCCI_BG_ABORT_ON_TIMEOUT: u32 = 1 << 0;
/// [`SwcciBgPolicy::flags`]: request an abort when the wait is interrupted by a signal.
pub const SWCCI_BG_ABORT_ON_SIGNAL: u32 = 1 << 1;
/// All valid [`SwcciBgPolicy::flags`].
pub const SWCCI_BG_FLAGS: u32 =
    SWCCI_BG_ABORT_ON_TIMEOUT | SWCCI_BG_ABORT_ON_SIGNAL | SWCCI_BG_ASYNC;
/// `SWCCI_BG_ASYNC`: a raw command the device runs in the background returns at once (retval
/// 01h); poll() reports EPOLLIN when it ended and [`SWCCI_IOCTL_BG_RESULT`] gives its outcome.
pub const SWCCI_BG_ASYNC: u32 = 1 << 2;
/// Shortest background wait a file may set, in milliseconds.
pub const SWCCI_BG_TIMEOUT_MIN_MS: u32 = 1;
/// Longest background wait a file may set, in milliseconds (10 minutes).
pub const SWCCI_BG_TIMEOUT_MAX_MS: u32 = 600_000;

/// `struct swcci_bg_policy`: how raw background commands sent through one open file are waited
/// for. `SWCCI_IOCTL_BG_POLICY` sets it (a zero `timeout_ms` keeps the current value) and
/// returns the policy in effect.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwcciBgPolicy {
    /// Wait for completion at most this long.
    pub timeout_ms: u32,
    /// `SWCCI_BG_*`.
    pub flags: u32,
}

/// `SWCCI_IOCTL_BG_POLICY`.
pub const SWCCI_IOCTL_BG_POLICY: u32 = iowr(CXL_IOC_TYPE, 0xa1, size_of::<SwcciBgPolicy>());

/// `struct swcci_bg_result.state`: the file holds no asynchronous operation.
pub const SWCCI_BG_STATE_NONE: u8 = 0;
/// Still running (`percent` is its progress).
pub const SWCCI_BG_STATE_RUNNING: u8 = 1;
/// Completed: `retval` and `vendor_status` (the result is collected).
pub const SWCCI_BG_STATE_DONE: u8 = 2;
/// Ended, but another caller's background command was accepted before its result was read.
pub const SWCCI_BG_STATE_LOST: u8 = 3;
/// Vanished from the Background Command Status register before it completed (a reset).
pub const SWCCI_BG_STATE_VANISHED: u8 = 4;

/// `struct swcci_bg_result`: the asynchronous background operation of one open file
/// (`SWCCI_IOCTL_BG_RESULT`, 16 bytes on every architecture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwcciBgResult {
    /// Its opcode.
    pub opcode: u16,
    /// Its final return code (`SWCCI_BG_STATE_DONE`).
    pub retval: u16,
    /// Its vendor extended status (`SWCCI_BG_STATE_DONE`).
    pub vendor_status: u16,
    /// `SWCCI_BG_STATE_*`.
    pub state: u8,
    /// Its progress in % (`SWCCI_BG_STATE_RUNNING`).
    pub percent: u8,
    /// Reserved, zero.
    pub rsvd: u64,
}

/// `SWCCI_IOCTL_BG_RESULT`: the outcome of the file's asynchronous background operation.
pub const SWCCI_IOCTL_BG_RESULT: u32 = ior(CXL_IOC_TYPE, 0xa2, size_of::<SwcciBgResult>());

/// `struct swcci_mmpt_msg`: one management message for `SWCCI_MMPT_SEND` /
/// `SWCCI_MMPT_RECV`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwcciMmptMsg {
    /// Message type (send: in; receive: out).
    pub msg_type: u8,
    /// Reserved, zero.
    pub rsvd0: [u8; 3],
    /// Receive: wait at most this long for a message, in ms (0: do not wait). Send: the
    /// longest the whole transfer may take, in ms (0: 60 s). At most
    /// [`SWCCI_MMPT_TIMEOUT_MAX_MS`].
    pub timeout_ms: u32,
    /// Send: message length. Receive: in, the buffer size; out, the message length.
    pub len: u32,
    /// Out: the device's MMPT return code of the transfer.
    pub retval: u32,
    /// User pointer to the message data.
    pub data: u64,
}

/// `SWCCI_MMPT_SEND`.
pub const SWCCI_MMPT_SEND: u32 = iowr(CXL_IOC_TYPE, 0xb0, size_of::<SwcciMmptMsg>());
/// `SWCCI_MMPT_RECV`.
pub const SWCCI_MMPT_RECV: u32 = iowr(CXL_IOC_TYPE, 0xb1, size_of::<SwcciMmptMsg>());
/// Longest receive wait a caller may ask for, in ms.
pub const SWCCI_MMPT_TIMEOUT_MAX_MS: u32 = 600_000;

/// `struct swcci_mmb_command`: a raw MMB command with an explicit opcode vendor id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwcciMmbCommand {
    /// Opcode.
    pub opcode: u16,
    /// Opcode vendor id: 0000h legacy CXL, 0001h PCI-SIG.
    pub opcode_vendor: u16,
    /// Out: return code.
    pub retval: u32,
    /// Out: vendor extended status.
    pub vendor_status: u32,
    /// Reserved, zero.
    pub rsvd: u32,
    /// Input payload.
    pub input: CxlPayload,
    /// Output payload; `size` is rewritten with the bytes returned.
    pub output: CxlPayload,
}

/// `SWCCI_MMB_SEND_COMMAND`.
pub const SWCCI_MMB_SEND_COMMAND: u32 = iowr(CXL_IOC_TYPE, 0xb2, size_of::<SwcciMmbCommand>());

/// Serialisation to and from native-endian bytes, field by field at the offsets of the
/// `#[repr(C)]` layout.
pub trait Wire: Sized {
    /// Size of the structure.
    const SIZE: usize;
    /// Decodes from exactly [`Self::SIZE`] bytes (reserved and padding bytes included).
    fn from_bytes(b: &[u8]) -> Option<Self>;
    /// Encodes into [`Self::SIZE`] bytes of `out`.
    fn to_bytes(&self, out: &mut [u8]) -> Option<()>;
}

fn get<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    let mut v = [0u8; N];
    v.copy_from_slice(b.get(at..at.checked_add(N)?)?);
    Some(v)
}

fn put(out: &mut [u8], at: usize, v: &[u8]) -> Option<()> {
    out.get_mut(at..at.checked_add(v.len())?)?
        .copy_from_slice(v);
    Some(())
}

/// The header of `struct fwctl_rpc_cxl` (include/uapi/fwctl/cxl.h, Linux 6.15+): the request
/// of an `FWCTL_RPC` to a CXL fwctl device. The command's input payload (`op_size` bytes)
/// follows the 16-byte header in the same buffer (the header's union).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwctlRpcCxl {
    /// Opcode (command set << 8 | command); 32 bits in the ABI, 16 used.
    pub opcode: u32,
    /// Flags: none defined, 0.
    pub flags: u32,
    /// Bytes of input payload after the header.
    pub op_size: u32,
    /// Reserved, 0.
    pub reserved1: u32,
}

/// The header of `struct fwctl_rpc_cxl_out` (include/uapi/fwctl/cxl.h): the response of an
/// `FWCTL_RPC` to a CXL fwctl device. The command's output payload (`size` bytes) follows the
/// 8-byte header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwctlRpcCxlOut {
    /// Bytes of output payload after the header.
    pub size: u32,
    /// The device's return code.
    pub retval: u32,
}

macro_rules! wire_struct {
    ($ty:ident { $($field:ident: $kind:tt),* $(,)? }) => {
        impl Wire for $ty {
            const SIZE: usize = size_of::<$ty>();

            fn from_bytes(b: &[u8]) -> Option<Self> {
                if b.len() != Self::SIZE {
                    return None;
                }
                Some(Self {
                    $($field: wire_struct!(@get $kind, b, offset_of!($ty, $field)),)*
                })
            }

            fn to_bytes(&self, out: &mut [u8]) -> Option<()> {
                let out = out.get_mut(..Self::SIZE)?;
                out.fill(0);
                $(wire_struct!(@put $kind, out, offset_of!($ty, $field), self.$field);)*
                Some(())
            }
        }
    };
    (@get u8, $b:ident, $at:expr) => { u8::from_ne_bytes(get($b, $at)?) };
    (@get u16, $b:ident, $at:expr) => { u16::from_ne_bytes(get($b, $at)?) };
    (@get u32, $b:ident, $at:expr) => { u32::from_ne_bytes(get($b, $at)?) };
    (@get i32, $b:ident, $at:expr) => { i32::from_ne_bytes(get($b, $at)?) };
    (@get u64, $b:ident, $at:expr) => { u64::from_ne_bytes(get($b, $at)?) };
    (@get bytes, $b:ident, $at:expr) => { get($b, $at)? };
    (@get payload, $b:ident, $at:expr) => {
        CxlPayload::from_bytes($b.get($at..$at.checked_add(CxlPayload::SIZE)?)?)?
    };
    (@get u64s, $b:ident, $at:expr) => {{
        let mut v = [0u64; 4];
        for (i, x) in v.iter_mut().enumerate() {
            *x = u64::from_ne_bytes(get($b, $at.checked_add(i.checked_mul(8)?)?)?);
        }
        v
    }};
    (@put payload, $o:ident, $at:expr, $v:expr) => {
        $v.to_bytes($o.get_mut($at..)?)?
    };
    (@put bytes, $o:ident, $at:expr, $v:expr) => { put($o, $at, &$v)? };
    (@put u64s, $o:ident, $at:expr, $v:expr) => {
        for (i, x) in $v.iter().enumerate() {
            put($o, $at.checked_add(i.checked_mul(8)?)?, &x.to_ne_bytes())?;
        }
    };
    (@put $kind:tt, $o:ident, $at:expr, $v:expr) => { put($o, $at, &$v.to_ne_bytes())? };
}

wire_struct!(CxlCommandInfo {
    id: u32,
    flags: u32,
    size_in: i32,
    size_out: i32
});
wire_struct!(CxlMemQueryCommands {
    n_commands: u32,
    rsvd: u32
});
wire_struct!(CxlPayload {
    size: u32,
    rsvd: u32,
    payload: u64
});
wire_struct!(CxlSendCommand {
    id: u32,
    flags: u32,
    raw_opcode: u16,
    raw_rsvd: u16,
    retval: u32,
    input: payload,
    output: payload,
});
wire_struct!(SwcciInfo {
    version: u32,
    kind: u32,
    flags: u32,
    payload_size: u32,
    cel_entries: u32,
    pci_vendor: u16,
    pci_device: u16,
    vendor_id: u16,
    device_id: u16,
    subsys_vendor_id: u16,
    subsys_id: u16,
    serial: u64,
    max_msg_size_log2: u8,
    component_type: u8,
    rsvd0: bytes,
    pci_addr: bytes,
    node: bytes,
    rsvd1: u64s,
});
wire_struct!(SwcciBgPolicy {
    timeout_ms: u32,
    flags: u32
});
wire_struct!(SwcciMmptMsg {
    msg_type: u8,
    rsvd0: bytes,
    timeout_ms: u32,
    len: u32,
    retval: u32,
    data: u64,
});
wire_struct!(SwcciMmbCommand {
    opcode: u16,
    opcode_vendor: u16,
    retval: u32,
    vendor_status: u32,
    rsvd: u32,
    input: payload,
    output: payload,
});

wire_struct!(SwcciBgResult {
    opcode: u16,
    retval: u16,
    vendor_status: u16,
    state: u8,
    percent: u8,
    rsvd: u64,
});

wire_struct!(FwctlRpcCxl {
    opcode: u32,
    flags: u32,
    op_size: u32,
    reserved1: u32,
});

wire_struct!(FwctlRpcCxlOut {
    size: u32,
    retval: u32,
});

/// Copies `s` into a NUL-terminated fixed-size field (truncating; the last byte stays NUL).
pub fn put_cstr<const N: usize>(field: &mut [u8; N], s: &[u8]) {
    field.fill(0);
    for (d, c) in field.iter_mut().zip(s.iter().take(N.saturating_sub(1))) {
        *d = *c;
    }
}

/// The string in a NUL-terminated fixed-size field.
pub fn get_cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_ioctl_numbers() {
        assert_eq!(CXL_MEM_QUERY_COMMANDS, 0x8008_ce01);
        assert_eq!(CXL_MEM_SEND_COMMAND, 0xc030_ce02);
        assert_eq!(size_of::<CxlSendCommand>(), 48);
        assert_eq!(offset_of!(CxlSendCommand, retval), 12);
        assert_eq!(offset_of!(CxlSendCommand, input), 16);
        assert_eq!(offset_of!(CxlSendCommand, output), 32);
    }

    #[test]
    fn round_trips() {
        let cmd = CxlSendCommand {
            id: 2,
            flags: 0,
            raw_opcode: 0x5300,
            raw_rsvd: 0,
            retval: 7,
            input: CxlPayload {
                size: 16,
                rsvd: 0,
                payload: 0x1234_5678_9abc_def0,
            },
            output: CxlPayload {
                size: 2048,
                rsvd: 1,
                payload: 8,
            },
        };
        let mut b = [0u8; 48];
        cmd.to_bytes(&mut b).unwrap();
        assert_eq!(CxlSendCommand::from_bytes(&b), Some(cmd));
        assert_eq!(&b[8..10], &0x5300u16.to_ne_bytes());
        assert_eq!(CxlSendCommand::from_bytes(&b[..47]), None);

        let mut info = SwcciInfo {
            serial: 1234,
            ..SwcciInfo::default()
        };
        put_cstr(&mut info.node, b"cxl/switch0");
        info.rsvd1[3] = 9;
        let mut b = [0u8; SwcciInfo::SIZE];
        info.to_bytes(&mut b).unwrap();
        let back = SwcciInfo::from_bytes(&b).unwrap();
        assert_eq!(back, info);
        assert_eq!(get_cstr(&back.node), b"cxl/switch0");

        let m = SwcciMmptMsg {
            msg_type: 2,
            len: 5000,
            data: 0xdead_beef,
            ..Default::default()
        };
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        m.to_bytes(&mut b).unwrap();
        assert_eq!(SwcciMmptMsg::from_bytes(&b), Some(m));
        let c = SwcciMmbCommand {
            opcode: 0x0100,
            opcode_vendor: 1,
            ..Default::default()
        };
        let mut b = [0u8; SwcciMmbCommand::SIZE];
        c.to_bytes(&mut b).unwrap();
        assert_eq!(SwcciMmbCommand::from_bytes(&b), Some(c));
    }

    #[test]
    fn cstr_fields_truncate() {
        let mut f = [0xffu8; 4];
        put_cstr(&mut f, b"abcdef");
        assert_eq!(f, *b"abc\0");
        assert_eq!(get_cstr(&f), b"abc");
        assert_eq!(get_cstr(b"xyz"), b"xyz");
    }

    #[test]
    fn layouts_have_no_implicit_padding() {
        // Every 64-bit field is 8-aligned by construction, so i386's 4-byte alignment of u64
        // gives the same layout and the same ioctl numbers.
        assert_eq!(offset_of!(SwcciInfo, serial) % 8, 0);
        assert_eq!(offset_of!(SwcciInfo, rsvd1) % 8, 0);
        assert_eq!(size_of::<SwcciInfo>() % 8, 0);
        assert_eq!(offset_of!(CxlPayload, payload), 8);
    }
}
