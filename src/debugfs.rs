// SPDX-License-Identifier: GPL-2.0

//! debugfs: `cxl_swcci/<PCI address>/{stats,cel}` per device.
//!
//! `stats` counts commands, return codes, errors, background operations, interrupts and the
//! cost of waiting (register checks after a wait, spins, sleeps, interrupt waits), plus the
//! latency of the last command. `cel` lists the Command Effects Log read at probe.
//!
//! The files are made with the kernel's C debugfs API, not 7.3's Rust debugfs abstraction:
//! that one's file operations carry no owner, so a file held open across `rmmod` ran freed
//! module code when it was last closed (fs/debugfs/file.c, `full_proxy_release`; issue 21).
//! Here every file's operations name this module as their owner, so the debugfs core pins the
//! module while a file is open (`full_proxy_open` takes a reference on `fops->owner`), as the
//! device node's do: `rmmod` fails with EWOULDBLOCK until the last one is closed. Removing a
//! directory waits for callbacks in progress (`debugfs_remove`); a file read after that gets
//! EIO from the debugfs core and never reaches this module.

use crate::{
    device::{
        Swcci,
        IRQ_RECHECK_MAX_MS,
        IRQ_RECHECK_MS,
        RC_SLOTS, //
    },
    proto::{
        num::Dec,
        opcode,
        payload::logs::Cel,
        rc::ReturnCode, //
    },
    Disp, LocalModule,
};
use core::{
    ffi::{
        c_int,
        c_void, //
    },
    fmt,
    marker::PhantomData,
};
use kernel::{
    bindings,
    error::from_err_ptr,
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    str::CStr,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
};

/// A debugfs directory, removed (with everything in it) when dropped.
///
/// # Invariants
///
/// `0` is a dentry `debugfs_create_dir` returned (not an error pointer), not yet removed.
struct Dentry(*mut bindings::dentry);

// SAFETY: A dentry pointer may be used and removed from any thread.
unsafe impl Send for Dentry {}
// SAFETY: `&Dentry` only gives the pointer to debugfs calls, which serialise themselves.
unsafe impl Sync for Dentry {}

impl Dentry {
    /// Creates directory `name` below `parent` (the debugfs root if `None`).
    ///
    /// # Errors
    ///
    /// `debugfs_create_dir`'s (fs/debugfs/inode.c): EPERM when debugfs is disabled
    /// (`debugfs=off`), ENODEV without `CONFIG_DEBUG_FS`, EEXIST when `name` exists, ENOMEM.
    fn dir(name: &CStr, parent: Option<&Dentry>) -> Result<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.0);
        // SAFETY: `name` is NUL-terminated; `parent` is null or a live directory (type
        // invariant of the parent, which the caller keeps alive).
        let d = from_err_ptr(unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), parent) })?;
        // INVARIANT: `from_err_ptr` returned no error pointer.
        Ok(Self(d))
    }
}

impl Drop for Dentry {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the dentry is live and removed only here.
        unsafe { bindings::debugfs_remove(self.0) };
    }
}

/// The module's debugfs directory, `cxl_swcci/`; device directories go below it.
pub(crate) struct Root(Dentry);

impl Root {
    /// Creates `cxl_swcci/`. debugfs is best effort: `None` when it cannot be had.
    pub(crate) fn new() -> Option<Self> {
        Dentry::dir(crate::MODULE_NAME, None).ok().map(Self)
    }
}

/// What one debugfs file shows of a device.
trait Show {
    /// The file's name.
    const NAME: &'static CStr;
    /// Writes the file's contents.
    fn show(dev: &Swcci, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// `Display` of one file of one device.
struct Shown<'a, S>(&'a Swcci, PhantomData<S>);

impl<S: Show> fmt::Display for Shown<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        S::show(self.0, f)
    }
}

/// The seq_file `show` callback of file `S`.
///
/// # Safety
///
/// `seq` is a live seq_file opened by [`open`] for `S`, whose private data is the `Swcci` of a
/// live [`DeviceDir`].
unsafe extern "C" fn show<S: Show>(seq: *mut bindings::seq_file, _: *mut c_void) -> c_int {
    // SAFETY: By the function's safety requirements `private` is a `Swcci` kept alive by its
    // `DeviceDir`, whose removal (`debugfs_remove`) waits for this callback to return.
    let dev = unsafe { &*(*seq).private.cast::<Swcci>() };
    // SAFETY: `seq` is live for the duration of this call.
    let file = unsafe { SeqFile::from_raw(seq) };
    seq_print!(file, "{}", Disp(&Shown::<S>(dev, PhantomData)));
    0
}

/// The `open` file operation of file `S`: a single-record seq_file over the inode's data.
///
/// # Safety
///
/// `inode` and `file` are those of a file being opened that [`DeviceDir::new`] created for `S`.
unsafe extern "C" fn open<S: Show>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `file` is being opened; `i_private` is the `Swcci` the file was created with,
    // alive while the file exists (see `show`).
    unsafe { bindings::single_open(file, Some(show::<S>), (*inode).i_private) }
}

/// The file operations of file `S`, owned by this module so that an open file pins it.
struct Fops<S>(PhantomData<S>);

impl<S: Show> Fops<S> {
    const OPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<LocalModule>().as_ptr(),
        open: Some(open::<S>),
        read: Some(bindings::seq_read),
        llseek: Some(bindings::seq_lseek),
        release: Some(bindings::single_release),
        ..pin_init::zeroed()
    };
}

/// The debugfs directory of one device; removed when dropped.
///
/// # Invariants
///
/// `_dev` is the private data of every file in `_dir` and outlives them: the directory is
/// removed first (field order).
pub(crate) struct DeviceDir {
    // Removed first: no callback runs after that, so the device may go.
    _dir: Dentry,
    _dev: Arc<Swcci>,
}

impl DeviceDir {
    /// Creates `cxl_swcci/<PCI address>/` with its files. debugfs is best effort: failures
    /// leave the device without it.
    pub(crate) fn new(root: Option<&Root>, dev: &Arc<Swcci>) -> Option<Self> {
        let root = root?;
        let dir = Dentry::dir(dev.pdev.as_ref().name(), Some(&root.0)).ok()?;
        let data = Arc::as_ptr(dev).cast_mut().cast::<c_void>();
        for (name, fops) in [
            (Stats::NAME, &Fops::<Stats>::OPS),
            (CelFile::NAME, &Fops::<CelFile>::OPS),
        ] {
            // SAFETY: `name` is NUL-terminated, `dir` is a live directory, `fops` is static and
            // `data` is kept alive by `_dev` until `dir` is removed (field order).
            let f = unsafe {
                bindings::debugfs_create_file_full(
                    name.as_char_ptr(),
                    0o400,
                    dir.0,
                    data,
                    core::ptr::null(),
                    fops,
                )
            };
            if from_err_ptr(f).is_err() {
                return None;
            }
        }
        Some(Self {
            _dir: dir,
            _dev: dev.clone(),
        })
    }
}

/// `stats`.
struct Stats;

impl Show for Stats {
    const NAME: &'static CStr = c"stats";

    fn show(dev: &Swcci, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, bg) = {
            let st = dev.state.lock();
            (st.stats.clone(), st.bg.current())
        };
        writeln!(f, "node: {}", dev.node_name.to_str().unwrap_or("?"))?;
        writeln!(f, "payload_size: {}", dev.payload_size)?;
        let mode = |irq: bool| if irq { "interrupt" } else { "poll" };
        writeln!(f, "mode: {}", mode(dev.irq_mode()))?;
        writeln!(f, "background_mode: {}", mode(dev.bg_irq_mode()))?;
        writeln!(f, "irq_recheck_ms: {IRQ_RECHECK_MS}..{IRQ_RECHECK_MAX_MS}")?;
        writeln!(f, "commands: {}", Dec(s.commands))?;
        for (rc, &n) in s.by_rc.iter().enumerate() {
            if n != 0 {
                let n = Dec(n);
                if rc == RC_SLOTS - 1 {
                    writeln!(f, "rc_unknown: {n}")?;
                } else {
                    // rc < RC_SLOTS - 1 = 33: fits.
                    let code = ReturnCode::from_raw(u16::try_from(rc).unwrap_or(u16::MAX));
                    writeln!(f, "rc_{rc:02x}: {n}  # {code}")?;
                }
            }
        }
        let irq = &dev.irq_stats;
        for (name, n) in [
            ("timeouts", s.timeouts),
            ("busy", s.busy),
            ("io_errors", s.io_errors),
            ("bad_output_length", s.bad_length),
            ("bg_started", s.bg_started),
            ("bg_completed", s.bg_completed),
            ("bg_superseded", s.bg_superseded),
            ("bg_vanished", s.bg_vanished),
            ("bg_timeouts", s.bg_timeouts),
            ("bg_interrupted", s.bg_interrupted),
            ("bg_aborts", s.bg_aborts),
            ("irqs", irq.irqs.load(Relaxed)),
            ("spurious_irqs", irq.spurious_irqs.load(Relaxed)),
            ("event_irqs", irq.event_irqs.load(Relaxed)),
            ("missed_irqs", s.missed_irqs),
            ("immediate", s.immediate),
            ("polls", s.polls),
            ("spins", s.spins),
            ("sleeps", s.sleeps),
            ("irq_waits", s.irq_waits),
            ("last_latency_ns", s.last_latency_ns),
        ] {
            writeln!(f, "{name}: {}", Dec(n))?;
        }
        match dev.event_status_offset() {
            Some(off) => writeln!(f, "event_status_register: {off:#x}")?,
            None => writeln!(f, "event_status_register: none")?,
        }
        writeln!(f, "events_signalled: {}", Dec(dev.event_seq.load(Relaxed)))?;
        writeln!(f, "pollers: {}", dev.poller_count())?;
        match bg {
            Some((_, opcode)) => writeln!(f, "bg_running: {opcode:04x}"),
            None => writeln!(f, "bg_running: none"),
        }
    }
}

/// `cel`.
struct CelFile;

impl Show for CelFile {
    const NAME: &'static CStr = c"cel";

    fn show(dev: &Swcci, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in Cel::new(&dev.info().cel).iter() {
            writeln!(
                f,
                "{:04x} {:04x} {}",
                e.opcode,
                e.effect,
                opcode::name(e.opcode).unwrap_or("-")
            )?;
        }
        Ok(())
    }
}
