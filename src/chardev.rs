// SPDX-License-Identifier: GPL-2.0

//! The device node: `/dev/cxl/switchN` with the ioctl ABI of `<linux/cxl_mem.h>`
//! (`CXL_MEM_SEND_COMMAND` with `CXL_MEM_COMMAND_ID_RAW`, `CXL_MEM_QUERY_COMMANDS`) and this
//! driver's own ioctls (`include/uapi/linux/cxl_swcci.h`). Documentation/abi.rst describes every
//! ioctl and errno.
//!
//! Open files hold the device object, not the PCI binding: after unbind every ioctl fails with
//! ENXIO, and the module stays loaded (rmmod fails with EWOULDBLOCK) until the last file is closed.
//!
//! Every ioctl is dispatched from one table, [`IOCTLS`] (as drivers/cxl/core/mbox.c describes
//! its commands in one): number, handler, and whether it needs a bound device. A handler that
//! sends anything to the device gets it admitted by the access policy (`policy.rs`) after its
//! own argument checks (Documentation/abi.rst gives the order) and runs the [`Command`] it gets
//! with the device's one command path, [`Swcci::run`].
//!
//! A background wait a signal interrupted (without killing the caller) returns ERESTARTSYS;
//! the file remembers it ([`Resume`]), so the restarted call, which asks the same, resumes the
//! wait instead of sending the command again.
//!
//! Payload buffers: each open file keeps one pair of payload-sized buffers, allocated at its
//! first raw command and reused, so the command path allocates nothing. The input is copied
//! from userspace into them *before* the device mutex is taken, and the output copied back
//! after it is dropped: a page fault on a user buffer (a userfaultfd-backed one can stall for
//! as long as its owner likes) then holds up only that caller, never the mailbox and its other
//! clients, which a per-device buffer filled under the mutex would. A command takes the file's
//! buffers with one `try_lock` of their mutex (one atomic exchange when, as usual, one thread
//! uses the file); a thread that finds them in use by another thread of the same file
//! allocates its own for that command instead of waiting.

use crate::{
    device::{
        AsyncSlot,
        Kind,
        Poller,
        Received,
        Resume,
        Swcci, //
    },
    policy::{
        self,
        Command, //
    },
    proto::{
        mailbox::{
            BgPolicy,
            Response, //
        },
        mmpt,
        uapi::{
            put_cstr,
            CxlCommandInfo,
            CxlMemQueryCommands,
            CxlPayload,
            CxlSendCommand,
            SwcciBgPolicy,
            SwcciInfo,
            SwcciMmbCommand,
            SwcciMmptMsg,
            Wire,
            CXL_MEM_COMMAND_FLAG_ENABLED,
            CXL_MEM_COMMAND_FLAG_MASK,
            CXL_MEM_COMMAND_ID_RAW,
            CXL_MEM_QUERY_COMMANDS,
            CXL_MEM_SEND_COMMAND,
            SWCCI_BG_ABORT_ON_SIGNAL,
            SWCCI_BG_ABORT_ON_TIMEOUT,
            SWCCI_BG_ASYNC,
            SWCCI_BG_FLAGS,
            SWCCI_BG_TIMEOUT_MAX_MS,
            SWCCI_BG_TIMEOUT_MIN_MS,
            SWCCI_INFO_BG_IRQ,
            SWCCI_INFO_CXL,
            SWCCI_INFO_IDENTIFIED,
            SWCCI_INFO_IRQ,
            SWCCI_INFO_MMB,
            SWCCI_INFO_MMPT,
            SWCCI_IOCTL_BG_POLICY,
            SWCCI_IOCTL_BG_RESULT,
            SWCCI_IOCTL_INFO,
            SWCCI_KIND_MMB,
            SWCCI_KIND_SWITCH_CCI,
            SWCCI_MMB_SEND_COMMAND,
            SWCCI_MMPT_RECV,
            SWCCI_MMPT_SEND,
            SWCCI_MMPT_TIMEOUT_MAX_MS,
            SWCCI_VERSION, //
        },
    },
};
use core::mem::MaybeUninit;
use kernel::{
    bindings,
    error::to_result,
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    str::CStr,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        poll::PollTable,
        Arc,
        Mutex, //
    },
    types::Opaque,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
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

/// Node names of other MMB functions: `swcci/mmptN` (named so for ABI compatibility: most such
/// functions carry MMPT management messages). They stay out of /dev/cxl/, which CXL tools scan.
static MMB_NAMES: [&CStr; MAX_NODES] = node_names!("swcci/mmpt":
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);

/// Node numbers in use, one bit each, per kind.
static SWITCH_IDS: Atomic<u32> = Atomic::new(0);
static MMB_IDS: Atomic<u32> = Atomic::new(0);

/// A node number, released when dropped.
pub(crate) struct NodeId {
    kind: Kind,
    id: u32,
}

impl NodeId {
    fn table(kind: Kind) -> (&'static Atomic<u32>, &'static [&'static CStr; MAX_NODES]) {
        match kind {
            Kind::SwitchCci => (&SWITCH_IDS, &SWITCH_NAMES),
            Kind::Mmb => (&MMB_IDS, &MMB_NAMES),
        }
    }

    /// Takes the lowest free number of `kind`.
    ///
    /// # Errors
    ///
    /// ENOSPC when all [`MAX_NODES`] numbers of `kind` are taken.
    pub(crate) fn alloc(kind: Kind) -> Result<Self> {
        let (ids, _) = Self::table(kind);
        let mut cur = ids.load(Relaxed);
        loop {
            let id = (!cur).trailing_zeros();
            if usize::try_from(id).map_or(true, |i| i >= MAX_NODES) {
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
            .get(usize::try_from(self.id).unwrap_or(MAX_NODES))
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

/// The file operations of the node: those 7.3 builds for a `MiscDevice` (open, release, ioctl,
/// compat_ioctl, each calling `SwcciFile`'s), plus `poll`, which 7.3's `MiscDevice` does not
/// offer. Built at compile time from `MiscDeviceOptions::into_raw`, so they are exactly 7.3's
/// with one more callback.
static FOPS: Fops = {
    let base = MiscDeviceOptions { name: c"" }.into_raw::<SwcciFile>();
    // SAFETY: `base.fops` points to the static file operations 7.3 builds for `SwcciFile`
    // (`MiscdeviceVTable::build`), readable at compile time.
    let mut fops = unsafe { core::ptr::read(base.fops) };
    fops.poll = Some(poll);
    Fops(fops)
};

/// File operations in static memory, which the kernel only reads.
///
/// # Invariants
///
/// Never written after its constant initialisation.
#[repr(transparent)]
struct Fops(bindings::file_operations);

// SAFETY: After its constant initialisation nothing writes a `Fops`: the kernel only reads the
// callbacks and the owner pointer, so sharing it between threads is sound.
unsafe impl Sync for Fops {}

/// The node's `struct miscdevice`: 7.3's `MiscDeviceRegistration<SwcciFile>` with [`FOPS`].
///
/// # Invariants
///
/// `inner` is a miscdevice registered with `misc_register`, made by
/// `MiscDeviceOptions::into_raw::<SwcciFile>` with [`FOPS`] as its file operations, and
/// deregistered exactly once, when this drops. It has the layout of
/// `MiscDeviceRegistration<SwcciFile>` (`#[repr(transparent)]` over
/// `Opaque<bindings::miscdevice>`, rust/kernel/miscdevice.rs), which 7.3's `open` callback
/// casts the miscdevice to. It only exists as the `reg` field of a pinned [`Node`] (only
/// [`Node::register`] makes one), which `SwcciFile::open` relies on to reach the node.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
struct NodeRegistration {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: `misc_deregister` may run on another thread than `misc_register`; `&self` gives
// nothing but the registration's address.
unsafe impl Send for NodeRegistration {}
// SAFETY: As above: nothing is reached through `&NodeRegistration`.
unsafe impl Sync for NodeRegistration {}

impl NodeRegistration {
    /// Registers the node `name`.
    fn register(name: &'static CStr) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw = MiscDeviceOptions { name }.into_raw::<SwcciFile>();
                raw.fops = &FOPS.0;
                // SAFETY: The initialiser may write to `slot`.
                unsafe { slot.write(raw) };
                // SAFETY: `slot` holds the miscdevice just written; it stays pinned and is
                // deregistered before it is freed (`PinnedDrop`).
                // INVARIANT: on success `inner` is registered with `FOPS`.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for NodeRegistration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered, by the type invariant; deregistered only here.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The `poll` file operation of the node.
///
/// # Safety
///
/// `file` is an open file of the node (its private data is the `KBox<SwcciFile>` that 7.3's
/// `open` callback stored, alive until `release`, which cannot run during `poll`), and `wait`
/// is null or a valid `poll_table` for the duration of the call.
unsafe extern "C" fn poll(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: By the function's safety requirements, `private_data` is a live `SwcciFile`.
    let me = unsafe { &*(*file).private_data.cast::<SwcciFile>() };
    // SAFETY: `file` is valid for the duration of this call.
    let f = unsafe { File::from_raw_file(file) };
    // SAFETY: `wait` is null or a valid `poll_table` for the duration of this call.
    let table = unsafe { PollTable::from_raw(wait) };
    me.poll(f, &table)
}

/// A registered device node.
///
/// # Invariants
///
/// `dev` is in place before `reg` is registered and dropped after it is deregistered (field
/// order), so every `open` of the node finds it.
#[pin_data]
pub(crate) struct Node {
    // Declared first so that it is deregistered first: no open can start after that.
    #[pin]
    reg: NodeRegistration,
    // Released after the registration, so a new device cannot take the name too early.
    _id: NodeId,
    dev: Arc<Swcci>,
}

impl Node {
    /// Registers the node for `dev` under the name of `id`.
    ///
    /// # Errors
    ///
    /// ENOMEM; `misc_register`'s (drivers/char/misc.c): EBUSY when no misc minor is free,
    /// EEXIST when a device of that name exists, ENOMEM.
    pub(crate) fn register(dev: Arc<Swcci>, id: NodeId) -> Result<Pin<KBox<Self>>> {
        let name = id.name();
        KBox::pin_init(
            // Fields are initialised in this order: `dev` is in place before the node becomes
            // visible and `open` can run.
            try_pin_init!(Self {
                dev,
                _id: id,
                reg <- NodeRegistration::register(name),
            }? Error),
            GFP_KERNEL,
        )
    }
}

/// A pair of payload-sized buffers for one raw command: input and output.
struct Buffers {
    input: KVVec<u8>,
    output: KVVec<u8>,
}

impl Buffers {
    /// Both buffers, `payload` bytes each, zeroed.
    ///
    /// # Errors
    ///
    /// ENOMEM.
    fn new(payload: usize) -> Result<Self> {
        Ok(Self {
            input: KVVec::from_elem(0u8, payload, GFP_KERNEL)?,
            output: KVVec::from_elem(0u8, payload, GFP_KERNEL)?,
        })
    }
}

/// The background policy of a file in one word, so that it is read and changed atomically:
/// the timeout in ms in bits 31:0, the `SWCCI_BG_*` flags in bits 63:32.
#[derive(Clone, Copy)]
struct PackedPolicy(u64);

impl PackedPolicy {
    const fn new(timeout_ms: u32, flags: u32) -> Self {
        // Widening casts (`From` is not const).
        Self(((flags as u64) << 32) | timeout_ms as u64)
    }

    const fn timeout_ms(self) -> u32 {
        // Truncation intended: the low half.
        self.0 as u32
    }

    const fn flags(self) -> u32 {
        // The high half: fits.
        (self.0 >> 32) as u32
    }
}

/// One open file.
pub(crate) struct SwcciFile {
    dev: Arc<Swcci>,
    /// The file's background policy ([`PackedPolicy`]).
    bg_policy: Atomic<u64>,
    /// The file's payload buffers, once it sent a raw command; a command holds the lock
    /// (taken with `try_lock`) while it uses them.
    #[allow(clippy::struct_field_names)]
    buffers: Pin<KBox<Mutex<Option<Buffers>>>>,
    /// A background wait of this file that a signal interrupted.
    resume: Pin<KBox<Resume>>,
    /// The file's asynchronous background operation (`SWCCI_BG_ASYNC`).
    async_slot: Pin<KBox<AsyncSlot>>,
    /// What the file saw of events, and whether it counts among the device's pollers.
    poller: Poller,
}

impl Drop for SwcciFile {
    fn drop(&mut self) {
        self.poller.release(&self.dev);
    }
}

/// The user buffer of `len` bytes at user address `addr`.
///
/// # Errors
///
/// EFAULT when `addr` does not fit a pointer (above 4 GiB on a 32-bit kernel).
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

/// Room for one ioctl argument structure, of which only the `T::SIZE` bytes in use are ever
/// initialised: zeroing all [`ARG_MAX`] bytes twice per command cost more than the copies.
struct ArgBuf([MaybeUninit<u8>; ARG_MAX]);

impl ArgBuf {
    const fn new() -> Self {
        Self([MaybeUninit::uninit(); ARG_MAX])
    }

    /// The structure `T` at `arg` in userspace, as bytes.
    ///
    /// # Errors
    ///
    /// EFAULT when it cannot be read; EINVAL when `T` is larger than [`ARG_MAX`] (the
    /// assertion above rules that out for the argument structures).
    fn read<T: Wire>(&mut self, arg: u64) -> Result<&[u8]> {
        let b = self.0.get_mut(..T::SIZE).ok_or(EINVAL)?;
        user(arg, T::SIZE)?.reader().read_raw(b)?;
        // SAFETY: `read_raw` initialised every byte of `b` (its guarantee on success), and
        // `MaybeUninit<u8>` has the layout of `u8`.
        Ok(unsafe { &*(core::ptr::from_ref(b) as *const [u8]) })
    }

    /// The first `T::SIZE` bytes, zeroed.
    ///
    /// # Errors
    ///
    /// EINVAL when `T` is larger than [`ARG_MAX`] (ruled out as for [`Self::read`]).
    fn zeroed<T: Wire>(&mut self) -> Result<&mut [u8]> {
        let b = self.0.get_mut(..T::SIZE).ok_or(EINVAL)?;
        b.fill(MaybeUninit::new(0));
        // SAFETY: every byte of `b` was just initialised, and `MaybeUninit<u8>` has the layout
        // of `u8`.
        Ok(unsafe { &mut *(core::ptr::from_mut(b) as *mut [u8]) })
    }
}

/// Reads the ioctl argument structure at `arg`.
///
/// # Errors
///
/// EFAULT when it cannot be read; EINVAL when `T` is larger than [`ARG_MAX`] or its bytes do
/// not decode (neither happens: the sizes match).
fn read_arg<T: Wire>(arg: u64) -> Result<T> {
    let mut buf = ArgBuf::new();
    T::from_bytes(buf.read::<T>(arg)?).ok_or(EINVAL)
}

/// Writes the ioctl argument structure `v` to `arg`.
///
/// # Errors
///
/// EFAULT when it cannot be written; EINVAL as for [`read_arg`] (does not happen).
fn write_arg<T: Wire>(arg: u64, v: &T) -> Result {
    let mut buf = ArgBuf::new();
    let b = buf.zeroed::<T>()?;
    v.to_bytes(b).ok_or(EINVAL)?;
    user(arg, T::SIZE)?.writer().write_slice(b)
}

/// A 32-bit size from userspace as a buffer length (usize is at least 32 bits wide).
fn len_of(size: u32) -> usize {
    usize::try_from(size).unwrap_or(usize::MAX)
}

/// A length at most the payload size (1 MiB) or the largest message (1 MiB) as a 32-bit
/// size for userspace.
fn size_of_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One ioctl.
struct Ioctl {
    cmd: u32,
    handler: fn(&SwcciFile, u64) -> Result,
    /// Fails with ENXIO once the device is unbound (files stay open).
    needs_bound: bool,
}

/// Every ioctl of the node; anything else is ENOTTY.
static IOCTLS: [Ioctl; 8] = [
    Ioctl {
        cmd: CXL_MEM_SEND_COMMAND,
        handler: (SwcciFile::send),
        needs_bound: true,
    },
    Ioctl {
        cmd: CXL_MEM_QUERY_COMMANDS,
        handler: (SwcciFile::query),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_IOCTL_INFO,
        handler: (SwcciFile::info),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_IOCTL_BG_POLICY,
        handler: (SwcciFile::bg_policy),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_IOCTL_BG_RESULT,
        handler: (SwcciFile::bg_result),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_MMB_SEND_COMMAND,
        handler: (SwcciFile::mmb_command),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_MMPT_SEND,
        handler: (SwcciFile::mmpt_send),
        needs_bound: true,
    },
    Ioctl {
        cmd: SWCCI_MMPT_RECV,
        handler: (SwcciFile::mmpt_recv),
        needs_bound: true,
    },
];

#[vtable]
impl MiscDevice for SwcciFile {
    type Ptr = KBox<Self>;

    /// A new open file of the node, with the default background policy (`bg_timeout_ms`,
    /// abort on timeout).
    ///
    /// # Errors
    ///
    /// ENOMEM.
    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        // The only miscdevice with `SwcciFile`'s operations is the `reg` field of a pinned
        // `Node` (a `NodeRegistration`, of the same layout: only `Node::register` makes one).
        let reg = core::ptr::from_ref(misc)
            .cast::<NodeRegistration>()
            .cast_mut();
        // SAFETY: As above, `reg` is the `reg` field of a `Node`. `open` runs under the misc
        // device lock, which `misc_deregister` (called when the `Node` drops) also takes, so
        // the `Node` is alive for the duration of this call.
        let node = unsafe { &*kernel::container_of!(reg, Node, reg) };
        let timeout = crate::module_parameters::bg_timeout_ms
            .value()
            .clamp(SWCCI_BG_TIMEOUT_MIN_MS, SWCCI_BG_TIMEOUT_MAX_MS);
        let policy = PackedPolicy::new(timeout, SWCCI_BG_ABORT_ON_TIMEOUT);
        Ok(KBox::new(
            Self {
                dev: node.dev.clone(),
                bg_policy: Atomic::new(policy.0),
                buffers: KBox::pin_init(new_mutex!(None), GFP_KERNEL)?,
                resume: KBox::pin_init(Resume::new(), GFP_KERNEL)?,
                async_slot: KBox::pin_init(AsyncSlot::new(), GFP_KERNEL)?,
                poller: Poller::new(&node.dev),
            },
            GFP_KERNEL,
        )?)
    }

    /// Runs the handler of `cmd` from [`IOCTLS`].
    ///
    /// # Errors
    ///
    /// ENOTTY for a number not in [`IOCTLS`]; ENXIO once the device is unbound, before any
    /// other check; else the handler's. (EINVAL for an `arg` wider than 64 bits: none is.)
    fn ioctl(me: &SwcciFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // usize is at most 64 bits wide.
        let arg = u64::try_from(arg).map_err(|_| EINVAL)?;
        let ioctl = IOCTLS.iter().find(|i| i.cmd == cmd).ok_or(ENOTTY)?;
        // After unbind the file only holds a dead device object (a command racing with unbind
        // gets ENXIO from the device mutex).
        if ioctl.needs_bound && !me.dev.life.bound() {
            return Err(ENXIO);
        }
        (ioctl.handler)(me, arg)?;
        Ok(0)
    }
}

impl SwcciFile {
    fn policy(&self) -> BgPolicy {
        let p = PackedPolicy(self.bg_policy.load(Relaxed));
        BgPolicy {
            timeout_us: u64::from(p.timeout_ms()) * 1000,
            abort_on_timeout: p.flags() & SWCCI_BG_ABORT_ON_TIMEOUT != 0,
            abort_on_interrupt: p.flags() & SWCCI_BG_ABORT_ON_SIGNAL != 0,
        }
    }

    /// Runs raw command `opcode` of `opcode_vendor` with the user's input at `input.payload`
    /// (`input.size` bytes) and up to `output.size` output bytes to `output.payload`; the
    /// checks common to every raw path, in the order of Documentation/abi.rst, after the
    /// argument checks (the callers check the reserved members).
    ///
    /// # Errors
    ///
    /// EINVAL when `input.size` or `output.size` is above the payload size;
    /// [`policy::node_access`]'s (EOPNOTSUPP, EPERM); ENOMEM for the buffers; EFAULT when the
    /// input cannot be read (nothing is sent) or the output cannot be written (the command has
    /// run); else [`Self::run`]'s.
    fn raw(
        &self,
        opcode: u16,
        opcode_vendor: u16,
        input: &CxlPayload,
        output: &CxlPayload,
    ) -> Result<Response> {
        let dev = &*self.dev;
        let (in_len, out_len) = (len_of(input.size), len_of(output.size));
        let payload = dev.payload_size;
        if in_len > payload || out_len > payload {
            return Err(EINVAL);
        }
        let access = policy::node_access(&dev.target, opcode_vendor, opcode)?;
        // The file's buffers, allocated at its first raw command; a thread that finds them
        // in use by another thread of the same file gets its own for this command.
        let mut own;
        let mut slot = self.buffers.try_lock();
        let bufs = match slot.as_deref_mut() {
            Some(Some(b)) => b,
            Some(empty) => empty.insert(Buffers::new(payload)?),
            None => {
                own = Buffers::new(payload)?;
                &mut own
            }
        };
        let data = bufs.input.get_mut(..in_len).ok_or(EINVAL)?;
        // An empty copy cannot fault: skipped.
        if in_len != 0 {
            user(input.payload, in_len)?.reader().read_slice(data)?;
        }
        let cmd = access.command(&*data, self.policy());
        let out = bufs.output.get_mut(..out_len).ok_or(EINVAL)?;
        if opcode_vendor == 0 && opcode == crate::proto::opcode::GET_EVENT_RECORDS {
            // The file looks at the event records: what was signalled until now is seen.
            self.poller.looked_at_events(dev);
        }
        let r = self.run(&cmd, opcode_vendor, out)?;
        let out = bufs.output.get(..r.out_len).unwrap_or(&[]);
        user(output.payload, r.out_len)?.writer().write_slice(out)?;
        drop(slot);
        Ok(r)
    }

    /// Runs `cmd` (opcode vendor `vendor`) on the device. A raw PCI-SIG Send or Receive
    /// Message holds the transfer lock of its direction for the one command, so that it cannot
    /// land between the parts of a transfer the driver runs for another caller.
    ///
    /// # Errors
    ///
    /// For a raw Send or Receive Message: ERESTARTSYS when a signal comes while it waits for
    /// another caller's transfer, ENXIO once the device is unbound
    /// ([`crate::device::TransferLock::acquire`]). Then [`Swcci::run`]'s, or with
    /// `SWCCI_BG_ASYNC` [`Swcci::run_async`]'s.
    fn run(&self, cmd: &Command<'_>, vendor: u16, out: &mut [u8]) -> Result<Response> {
        let dev = &*self.dev;
        let _transfer = match (vendor, cmd.opcode()) {
            (mmpt::VENDOR_PCI_SIG, mmpt::SEND_MESSAGE) => Some(dev.mmpt_tx.acquire(dev)?),
            (mmpt::VENDOR_PCI_SIG, mmpt::RECEIVE_MESSAGE) => Some(dev.mmpt_rx.acquire(dev)?),
            _ => None,
        };
        let flags = PackedPolicy(self.bg_policy.load(Relaxed)).flags();
        if flags & SWCCI_BG_ASYNC != 0 {
            return Ok(dev.run_async(cmd, out, &self.resume, &self.async_slot)?);
        }
        Ok(dev.run(cmd, out, Some(&self.resume))?)
    }

    /// `SWCCI_IOCTL_BG_RESULT`.
    ///
    /// # Errors
    ///
    /// EFAULT when the result cannot be written (an ended operation then stays uncollected:
    /// the next call reports it again).
    fn bg_result(&self, arg: u64) -> Result {
        let res = self.dev.bg_result(&self.async_slot);
        write_arg(arg, &res)?;
        self.dev.bg_collect(&self.async_slot, &res);
        Ok(())
    }

    /// poll(2): registers with the device's wake-ups and reports what is ready
    /// (`Swcci::poll_mask`).
    fn poll(&self, file: &File, table: &PollTable<'_>) -> bindings::__poll_t {
        table.register_wait(file, self.dev.poll_cv());
        self.dev.poll_mask(&self.poller, Some(&self.async_slot))
    }

    /// `CXL_MEM_SEND_COMMAND`.
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be read, or written back (the command has run);
    /// ENOTTY for an `id` other than RAW; EINVAL for `flags` outside
    /// `CXL_MEM_COMMAND_FLAG_MASK` or a non-zero reserved member; else [`Self::raw`]'s.
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
        let r = self.raw(cmd.raw_opcode, 0, &cmd.input, &cmd.output)?;
        cmd.retval = u32::from(r.rc.raw());
        cmd.output.size = size_of_len(r.out_len);
        write_arg(arg, &cmd)
    }

    /// `SWCCI_MMB_SEND_COMMAND`: a raw MMB command with an explicit opcode vendor id.
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be read, or written back (the command has run);
    /// EINVAL for a non-zero reserved member; else [`Self::raw`]'s (EOPNOTSUPP for an opcode
    /// vendor other than 0000h on a CXL mailbox, which has no opcode vendor field).
    fn mmb_command(&self, arg: u64) -> Result {
        let mut cmd: SwcciMmbCommand = read_arg(arg)?;
        if cmd.rsvd != 0 || cmd.input.rsvd != 0 || cmd.output.rsvd != 0 {
            return Err(EINVAL);
        }
        let r = self.raw(cmd.opcode, cmd.opcode_vendor, &cmd.input, &cmd.output)?;
        cmd.retval = u32::from(r.rc.raw());
        cmd.vendor_status = u32::from(r.vendor_status);
        cmd.output.size = size_of_len(r.out_len);
        write_arg(arg, &cmd)
    }

    /// `SWCCI_MMPT_SEND`: `timeout_ms` caps the whole transfer (0: the driver's cap).
    ///
    /// # Errors
    ///
    /// EFAULT when the structure or the message cannot be read, or the structure cannot be
    /// written back (the message was sent); EINVAL for a non-zero reserved member or a
    /// `timeout_ms` above `SWCCI_MMPT_TIMEOUT_MAX_MS`; EOPNOTSUPP when the function has no MMPT
    /// registers; EMSGSIZE above [`mmpt::MAX_MESSAGE`]; [`policy::node_access`]'s (EPERM,
    /// EOPNOTSUPP); ENOMEM; else [`Swcci::mmpt_send`]'s.
    fn mmpt_send(&self, arg: u64) -> Result {
        let dev = &*self.dev;
        let mut m: SwcciMmptMsg = read_arg(arg)?;
        if m.rsvd0 != [0; 3] || m.timeout_ms > SWCCI_MMPT_TIMEOUT_MAX_MS {
            return Err(EINVAL);
        }
        dev.mmpt.ok_or(EOPNOTSUPP)?;
        let len = len_of(m.len);
        if len > mmpt::MAX_MESSAGE {
            return Err(EMSGSIZE);
        }
        let access = policy::node_access(&dev.target, mmpt::VENDOR_PCI_SIG, mmpt::SEND_MESSAGE)?;
        let mut data = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        user(m.data, len)?.reader().read_slice(&mut data)?;
        let msg = access.send_message(m.msg_type);
        let code = dev.mmpt_send(&msg, m.msg_type, &data, m.timeout_ms)?;
        m.retval = u32::from(code.raw());
        write_arg(arg, &m)
    }

    /// `SWCCI_MMPT_RECV`.
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be read or written back, or the message cannot be
    /// written (a received message is then put back at the head of the queue); EINVAL,
    /// EOPNOTSUPP and [`policy::node_access`]'s as for [`Self::mmpt_send`]; EMSGSIZE when the
    /// next message is longer than `len` (it stays queued) or was discarded for being longer
    /// than [`mmpt::MAX_MESSAGE`], with its type and length written back; else
    /// [`Swcci::mmpt_receive`]'s.
    fn mmpt_recv(&self, arg: u64) -> Result {
        let dev = &*self.dev;
        let mut m: SwcciMmptMsg = read_arg(arg)?;
        if m.rsvd0 != [0; 3] || m.timeout_ms > SWCCI_MMPT_TIMEOUT_MAX_MS {
            return Err(EINVAL);
        }
        dev.mmpt.ok_or(EOPNOTSUPP)?;
        let access = policy::node_access(&dev.target, mmpt::VENDOR_PCI_SIG, mmpt::RECEIVE_MESSAGE)?;
        let msg = access.receive_message();
        let res = match dev.mmpt_receive(&msg, len_of(m.len), m.timeout_ms)? {
            Received::Message { msg_type, data } => {
                // The function has dequeued the message: one the caller cannot take (a buffer
                // or an argument that faults) goes back to the head of the queue rather than
                // being lost, and the caller gets EFAULT.
                m.msg_type = msg_type;
                m.len = size_of_len(data.len());
                m.retval = 0;
                let delivered = user(m.data, data.len())
                    .and_then(|u| u.writer().write_slice(&data))
                    .and_then(|()| write_arg(arg, &m));
                if let Err(e) = delivered {
                    dev.mmpt_requeue(msg_type, data);
                    return Err(e);
                }
                return Ok(());
            }
            Received::TooBig { msg_type, len } | Received::Discarded { msg_type, len } => {
                m.msg_type = msg_type;
                m.len = size_of_len(len);
                Err(EMSGSIZE)
            }
        };
        write_arg(arg, &m)?;
        res
    }

    /// `CXL_MEM_QUERY_COMMANDS`: the commands this node carries. Only raw commands: sizes are
    /// the payload size (the most a raw command can carry either way).
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be read, or the count or the entries cannot be
    /// written; EINVAL when an entry does not encode (does not happen).
    fn query(&self, arg: u64) -> Result {
        let q: CxlMemQueryCommands = read_arg(arg)?;
        // At most 1 MiB: fits.
        let payload = i32::try_from(self.dev.payload_size).unwrap_or(i32::MAX);
        let commands = [CxlCommandInfo {
            id: CXL_MEM_COMMAND_ID_RAW,
            flags: CXL_MEM_COMMAND_FLAG_ENABLED,
            size_in: payload,
            size_out: payload,
        }];
        if q.n_commands == 0 {
            let count = CxlMemQueryCommands {
                n_commands: size_of_len(commands.len()),
                rsvd: 0,
            };
            return write_arg(arg, &count);
        }
        let n = len_of(q.n_commands).min(commands.len());
        let at = arg
            .checked_add(u64::try_from(CxlMemQueryCommands::SIZE).map_err(|_| EFAULT)?)
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
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be written.
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
                Kind::Mmb => SWCCI_KIND_MMB,
            },
            pci_vendor: dev.pdev.vendor_id().as_raw(),
            pci_device: dev.pdev.device_id(),
            ..SwcciInfo::default()
        };
        info.payload_size = size_of_len(dev.payload_size);
        let di = dev.info();
        info.cel_entries = size_of_len(di.cel.len() / 4);
        info.flags |= if dev.flavor.mmb { SWCCI_INFO_MMB } else { 0 }
            | if dev.flavor.cxl { SWCCI_INFO_CXL } else { 0 };
        if let Some(id) = di.ident {
            info.flags |= SWCCI_INFO_IDENTIFIED;
            info.vendor_id = id.vendor_id;
            info.device_id = id.device_id;
            info.subsys_vendor_id = id.subsys_vendor_id;
            info.subsys_id = id.subsys_id;
            info.serial = id.serial;
            info.max_msg_size_log2 = id.max_msg_size_log2;
            info.component_type = id.component_type.raw();
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

    /// `SWCCI_IOCTL_BG_POLICY`: one atomic update of timeout and flags, so two threads setting
    /// it on one file leave one of their policies, never a mix.
    ///
    /// # Errors
    ///
    /// EFAULT when the structure cannot be read, or written back (the policy is set all the
    /// same); EINVAL for flags outside `SWCCI_BG_FLAGS` or a non-zero `timeout_ms` outside
    /// 1..=600000 ms (nothing is changed).
    fn bg_policy(&self, arg: u64) -> Result {
        let p: SwcciBgPolicy = read_arg(arg)?;
        if p.flags & !SWCCI_BG_FLAGS != 0 {
            return Err(EINVAL);
        }
        if p.timeout_ms != 0
            && !(SWCCI_BG_TIMEOUT_MIN_MS..=SWCCI_BG_TIMEOUT_MAX_MS).contains(&p.timeout_ms)
        {
            return Err(EINVAL);
        }
        let mut cur = self.bg_policy.load(Relaxed);
        let now = loop {
            let timeout = match p.timeout_ms {
                0 => PackedPolicy(cur).timeout_ms(),
                t => t,
            };
            let new = PackedPolicy::new(timeout, p.flags);
            match self.bg_policy.cmpxchg(cur, new.0, Relaxed) {
                Ok(_) => break new,
                Err(seen) => cur = seen,
            }
        };
        let now = SwcciBgPolicy {
            timeout_ms: now.timeout_ms(),
            flags: now.flags(),
        };
        write_arg(arg, &now)
    }
}
