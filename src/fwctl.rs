// SPDX-License-Identifier: GPL-2.0

//! The fwctl interface (drivers/fwctl; Documentation/fwctl.rst): one fwctl device,
//! `/dev/fwctl/fwctlN`, per switch CCI, next to `/dev/cxl/switchN`, when the kernel has fwctl
//! and its Rust abstraction (`CONFIG_RUST_FWCTL_ABSTRACTIONS`). Without them, or built with
//! `make SWCCI_FWCTL=n`, the module builds the same and the probe line says `fwctl off`
//! (Kbuild sets `cfg(swcci_fwctl)` otherwise).
//!
//! - Device type `FWCTL_DEVICE_TYPE_CXL`. `FWCTL_INFO` returns `struct swcci_info`
//!   (include/uapi/linux/cxl_swcci.h), what `SWCCI_IOCTL_INFO` returns on the device node.
//! - `FWCTL_RPC` takes `struct fwctl_rpc_cxl` and returns `struct fwctl_rpc_cxl_out`
//!   (include/uapi/fwctl/cxl.h) for any opcode, Tunnel Management Command (5300h) included.
//!   Lockdown refuses every command first (EPERM, as on the node). Then the command needs the
//!   scope the access policy's judgement gives (`effects::judge`: the rules of the kernel's CXL
//!   fwctl driver, drivers/cxl/core/features.c, and for tunnelled commands at the lowest
//!   scopes the opcode class of the inner command, Documentation/fwctl.rst); a caller's scope
//!   below it is refused with EINVAL, that driver's errno. The fwctl core requires
//!   `CAP_SYS_RAWIO` for `FWCTL_RPC_DEBUG_WRITE_FULL` and taints the kernel ('J') for both
//!   debug-write scopes; lower scopes need no capability (access is the node's file mode,
//!   root-only by default).
//! - The command is admitted by the same access policy as the node's (`policy.rs`, which
//!   makes the [`Command`]) and runs through the same command path ([`Swcci::run`], serialised
//!   with the node's commands), with the node's default background policy: state-changing
//!   commands taint the kernel ('U') by the node's rule, right before the command reaches the
//!   device; quirks apply as on the node; an interrupted background wait resumes when fwctl
//!   restarts the call.
//! - Lifetime: the registration lives in the driver data and is dropped at unbind, after
//!   `unbind()` ended every wait; `fwctl_unregister` then waits for callbacks in progress and
//!   closes every open file's context. Afterwards the fwctl core answers ENODEV on open files,
//!   which no longer reach this module (it may be unloaded while they are open).

use crate::device::Swcci;
use kernel::{
    device::Bound,
    pci,
    str::CStr,
    sync::Arc, //
};

#[cfg(all(doc, swcci_fwctl))]
use crate::policy::Command;
#[cfg(swcci_fwctl)]
use crate::{
    chardev::SwcciFile,
    device::{
        Kind,
        Life,
        Resume, //
    },
    policy,
    proto::{
        effects::Scope,
        mailbox::BgPolicy,
        uapi::{
            FwctlRpcCxl,
            FwctlRpcCxlOut,
            SwcciInfo,
            Wire,
            SWCCI_BG_TIMEOUT_MAX_MS,
            SWCCI_BG_TIMEOUT_MIN_MS, //
        },
    },
};
#[cfg(swcci_fwctl)]
use kernel::{
    fwctl::{
        self,
        DeviceType,
        FwRpcResponse,
        Operations,
        RpcScope, //
    },
    prelude::*,
    sync::aref::ARef,
};

/// Size of the header of `struct fwctl_rpc_cxl` ([`FwctlRpcCxl`]); the command's input
/// payload follows.
#[cfg(swcci_fwctl)]
const RPC_IN_HEADER: usize = FwctlRpcCxl::SIZE;

/// Size of the header of `struct fwctl_rpc_cxl_out` ([`FwctlRpcCxlOut`]); the command's
/// output payload follows.
#[cfg(swcci_fwctl)]
const RPC_OUT_HEADER: usize = FwctlRpcCxlOut::SIZE;

/// The fwctl device of one function. Dropping it unregisters the device; `SwcciData` holds it
/// after the device node and before its reference to the device object.
///
/// # Invariants
///
/// The registration of `On` is never forgotten: it is dropped with the driver data, before the
/// function is unbound (what `fwctl::Registration::new` requires).
pub(crate) enum Fwctl<'bound> {
    /// No fwctl device: the kernel has no fwctl, or the function is not a switch CCI.
    Off(core::marker::PhantomData<&'bound ()>),
    /// Registering the device failed (logged); the device node works without it.
    #[cfg(swcci_fwctl)]
    Failed,
    /// Registered.
    #[cfg(swcci_fwctl)]
    On {
        /// Unregisters the device when dropped.
        _reg: fwctl::Registration<'bound, FwctlFile>,
        /// The device, for its name.
        dev: ARef<fwctl::Device<FwctlFile>>,
    },
}

impl<'bound> Fwctl<'bound> {
    /// Registers the fwctl device of `dev`, a function bound as `pdev`, if it is a switch CCI
    /// and the kernel has fwctl. A failure is logged and leaves the function without one.
    pub(crate) fn register(pdev: &'bound pci::Device<Bound>, dev: &Arc<Swcci>) -> Self {
        #[cfg(swcci_fwctl)]
        if dev.kind == Kind::SwitchCci {
            return match register(pdev, dev) {
                Ok((reg, fdev)) => Self::On {
                    _reg: reg,
                    dev: fdev,
                },
                Err(e) => {
                    dev_warn!(
                        pdev,
                        "cannot register a fwctl device: {:?}; /dev/{} works without it\n",
                        e,
                        dev.node_name.to_str().unwrap_or("?")
                    );
                    Self::Failed
                }
            };
        }
        let _ = (pdev, dev);
        Self::Off(core::marker::PhantomData)
    }

    /// What the probe line says: the fwctl device's name (`fwctl0`), `off` or `failed`.
    pub(crate) fn label(&self) -> &CStr {
        match self {
            Self::Off(_) => c"off",
            #[cfg(swcci_fwctl)]
            Self::Failed => c"failed",
            #[cfg(swcci_fwctl)]
            Self::On { dev, .. } => {
                let d: &kernel::device::Device = (**dev).as_ref();
                d.name()
            }
        }
    }
}

/// Allocates and registers the fwctl device of `dev`, child of `pdev`.
///
/// # Errors
///
/// ENOMEM when the device cannot be allocated (also when every fwctl device number is taken);
/// `cdev_device_add`'s (drivers/fwctl/main.c, `fwctl_register`), e.g. EEXIST, ENOMEM.
#[cfg(swcci_fwctl)]
fn register<'bound>(
    pdev: &'bound pci::Device<Bound>,
    dev: &Arc<Swcci>,
) -> Result<(
    fwctl::Registration<'bound, FwctlFile>,
    ARef<fwctl::Device<FwctlFile>>,
)> {
    let parent: &'bound kernel::device::Device<Bound> = pdev.as_ref();
    let fdev = fwctl::Device::<FwctlFile>::new(parent)?;
    let data = FwctlData { dev: dev.clone() };
    // SAFETY: `fdev` was allocated just above and is registered only here, once. The returned
    // registration is kept in the driver data (`SwcciData`), which the driver core drops (it
    // is never forgotten) before `pdev` is unbound.
    let reg = unsafe { fwctl::Registration::new(parent, &fdev, Ok::<_, Error>(data))? };
    Ok((reg, fdev))
}

/// What the fwctl callbacks of one device reach: the device object the node also uses.
#[cfg(swcci_fwctl)]
pub(crate) struct FwctlData {
    dev: Arc<Swcci>,
}

/// One open `/dev/fwctl/fwctlN`.
#[cfg(swcci_fwctl)]
#[pin_data]
pub(crate) struct FwctlFile {
    /// How background commands are waited for: the defaults of a new file on the device node
    /// (module parameter `bg_timeout_ms`, abort on timeout, keep running on a signal); fwctl
    /// has no ioctl to change them.
    bg: BgPolicy,
    /// A background wait of this file that a signal interrupted.
    #[pin]
    resume: Resume,
}

/// The background policy a newly opened device node starts with (`SwcciFile::open`).
#[cfg(swcci_fwctl)]
fn default_bg_policy() -> BgPolicy {
    let ms = crate::module_parameters::bg_timeout_ms
        .value()
        .clamp(SWCCI_BG_TIMEOUT_MIN_MS, SWCCI_BG_TIMEOUT_MAX_MS);
    BgPolicy {
        timeout_us: u64::from(ms) * 1000,
        abort_on_timeout: true,
        abort_on_interrupt: false,
    }
}

/// The scope of the caller, in the protocol core's terms.
#[cfg(swcci_fwctl)]
fn caller_scope(scope: RpcScope) -> Scope {
    match scope {
        RpcScope::Configuration => Scope::Configuration,
        RpcScope::DebugReadOnly => Scope::DebugReadOnly,
        RpcScope::DebugWrite => Scope::DebugWrite,
        RpcScope::DebugWriteFull => Scope::DebugWriteFull,
    }
}

/// A parsed `struct fwctl_rpc_cxl`.
#[cfg(swcci_fwctl)]
struct RpcRequest<'a> {
    opcode: u16,
    input: &'a [u8],
}

#[cfg(swcci_fwctl)]
impl<'a> RpcRequest<'a> {
    /// Validates the header as `cxlctl_fw_rpc` does (drivers/cxl/core/features.c): at least
    /// a header, `op_size` within the rest; and, stricter, `flags` and `reserved1` zero and an
    /// opcode that fits 16 bits. Bytes after the input payload are ignored.
    ///
    /// # Errors
    ///
    /// EINVAL for a buffer shorter than the header, non-zero `flags` or `reserved1`, an
    /// opcode above FFFFh, or an `op_size` beyond the buffer.
    fn parse(buf: &'a [u8]) -> Result<Self> {
        let head = buf.get(..RPC_IN_HEADER).ok_or(EINVAL)?;
        let h = FwctlRpcCxl::from_bytes(head).ok_or(EINVAL)?;
        if h.flags != 0 || h.reserved1 != 0 {
            return Err(EINVAL);
        }
        let opcode = u16::try_from(h.opcode).map_err(|_| EINVAL)?;
        let len = usize::try_from(h.op_size).map_err(|_| EINVAL)?;
        let input = buf
            .get(RPC_IN_HEADER..)
            .and_then(|rest| rest.get(..len))
            .ok_or(EINVAL)?;
        Ok(Self { opcode, input })
    }
}

#[cfg(swcci_fwctl)]
impl Operations for FwctlFile {
    type RegistrationData<'a> = FwctlData;

    const DEVICE_TYPE: DeviceType = DeviceType::Cxl;

    fn open<'a>(_device: &fwctl::Device<Self>, _data: &FwctlData) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            bg: default_bg_policy(),
            resume <- Resume::new(),
        }? Error)
    }

    /// `struct swcci_info`, as `SWCCI_IOCTL_INFO` returns it.
    ///
    /// # Errors
    ///
    /// ENOMEM; EINVAL when the structure does not encode (does not happen: the sizes match).
    fn info<'a>(
        _this: Pin<&Self>,
        _device: &fwctl::Device<Self>,
        data: &FwctlData,
    ) -> Result<KVec<u8>> {
        let info = SwcciFile::info_of(&data.dev);
        let mut out = KVec::from_elem(0u8, SwcciInfo::SIZE, GFP_KERNEL)?;
        info.to_bytes(&mut out).ok_or(EINVAL)?;
        Ok(out)
    }

    /// One command.
    ///
    /// # Errors
    ///
    /// In this order: EPERM under lockdown (before anything else, so that every RPC gets it,
    /// Documentation/fwctl.rst); EINVAL for a bad header ([`RpcRequest::parse`]) or a
    /// `max_output_len` below the 8-byte output header; ENXIO once the device is unbound or
    /// failed; EINVAL for sizes above the mailbox payload (input, or output room after the
    /// header); EINVAL for a scope below the command's; EOPNOTSUPP for a quirk; ENOMEM; else
    /// the node's errnos for the command ([`Swcci::run`]'s, ERESTARTSYS included: the wait
    /// resumes when fwctl restarts the call).
    fn fw_rpc<'a>(
        this: Pin<&Self>,
        _device: &fwctl::Device<Self>,
        data: &FwctlData,
        scope: RpcScope,
        rpc_buf: &mut [u8],
        max_output_len: usize,
    ) -> Result<FwRpcResponse> {
        let dev = &*data.dev;
        let access = policy::fwctl_access(&dev.target)?;
        let req = RpcRequest::parse(rpc_buf)?;
        let opcode = req.opcode;
        let room = max_output_len.checked_sub(RPC_OUT_HEADER).ok_or(EINVAL)?;
        if dev.life.get() != Life::Live {
            return Err(ENXIO);
        }
        let payload = dev.payload_size;
        if req.input.len() > payload || room > payload {
            return Err(EINVAL);
        }
        let cmd = access.command(opcode, req.input, caller_scope(scope), this.bg)?;

        let mut out = KVVec::from_elem(0u8, RPC_OUT_HEADER + room, GFP_KERNEL)?;
        let (head, body) = out.split_at_mut(RPC_OUT_HEADER);
        let r = dev.run(&cmd, body, Some(&this.resume))?;
        // The engine copies at most `room` bytes, and `room` is at most the payload size.
        let size = u32::try_from(r.out_len).map_err(|_| EINVAL)?;
        FwctlRpcCxlOut {
            size,
            retval: u32::from(r.rc.raw()),
        }
        .to_bytes(head)
        .ok_or(EINVAL)?;
        out.truncate(RPC_OUT_HEADER + r.out_len);
        Ok(FwRpcResponse::NewBuffer(out))
    }
}
