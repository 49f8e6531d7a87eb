// SPDX-License-Identifier: GPL-2.0

//! Argument parsing, and a smoke test of the whole program without QEMU: the server on a
//! temporary socket, the vfio-user crate's own client in QEMU's place, the protocol core's
//! discovery and mailbox engine on top of it, an eventfd for MSI-X vector 1, and the control
//! channel.

use super::*;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::AtomicUsize;
use swcci_proto::discover::{register_blocks, scan_block};
use swcci_proto::mailbox::{Event, IoError, Mailbox, RegIo, Request, Timeouts, Wait, WaitError};
use swcci_proto::payload::identify::Identify;
use vfio_bindings::bindings::vfio::VFIO_IRQ_SET_DATA_EVENTFD;

fn args(list: &[&str]) -> anyhow::Result<Option<Args>> {
    parse_args(list.iter().map(|s| s.to_string()))
}

#[test]
fn argument_parsing() {
    let a = args(&["--socket", "/tmp/s", "--personality", "switch"])
        .unwrap()
        .unwrap();
    assert_eq!(a.socket, PathBuf::from("/tmp/s"));
    assert_eq!(a.control, None);
    assert_eq!(a.device, DeviceConfig::new(Personality::Switch));
    assert_eq!(a.device.device, 0x5c01);
    assert_eq!(a.device.class(), 0x0c0b00);

    let a = args(&[
        "--socket=/tmp/s",
        "--personality=mmpt",
        "--control",
        "/tmp/c",
        "--vendor",
        "0x1234",
        "--device",
        "4660",
        "--serial",
        "0xdead_beef",
        "--payload-log2",
        "12",
        "--ready-ms",
        "250",
        "--no-msix",
        "--no-doorbell-irq",
        "--no-bg-irq",
        "-v",
        "-v",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(a.control, Some(PathBuf::from("/tmp/c")));
    let d = &a.device;
    assert_eq!(d.personality, Personality::Mmpt);
    assert_eq!((d.vendor, d.device, d.serial), (0x1234, 4660, 0xdead_beef));
    assert_eq!((d.payload_log2, d.ready_ms), (12, 250));
    assert!(!d.msix && !d.doorbell_irq && !d.bg_irq);
    assert_eq!(d.class(), 0xff0000);
    assert_eq!(a.verbose, 2);

    assert!(args(&["--help"]).unwrap().is_none());
    assert!(args(&["--socket", "/tmp/s", "-h"]).unwrap().is_none());
    for bad in [
        &["--personality", "switch"][..],
        &["--socket", "/tmp/s"],
        &["--socket", "/tmp/s", "--personality", "hub"],
        &["--socket", "/tmp/s", "--personality"],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--vendor",
            "0x10000",
        ],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--device",
            "x",
        ],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--payload-log2",
            "7",
        ],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--payload-log2",
            "21",
        ],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--payload-log2",
            "999",
        ],
        &["--socket", "/tmp/s", "--personality", "switch", "--bogus"],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--no-msix=1",
        ],
        &[
            "--socket",
            "/tmp/s",
            "--personality",
            "switch",
            "--control",
            "/tmp/s",
        ],
    ] {
        assert!(args(bad).is_err(), "{bad:?}");
    }
    let e = args(&["--socket", "/tmp/s", "--personality", "switch", "--serial"]).unwrap_err();
    assert!(e.to_string().contains("--serial needs a value"), "{e}");
}

#[test]
fn fabric_and_firmware_arguments() {
    let base = ["--socket", "/tmp/s", "--personality", "switch"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        args(&v)
    };
    let a = with(&[
        "--fw-slots",
        "4",
        "--ports",
        "8",
        "--vcs=2",
        "--vppbs",
        "5",
        "--mld-port",
        "3",
        "--lds",
        "2",
        "--dead-port",
        "4",
        "--empty-port",
        "5",
        "--empty-port",
        "7",
    ])
    .unwrap()
    .unwrap();
    let f = &a.device.fabric;
    assert_eq!(a.device.fw_slots, 4);
    assert_eq!((f.ports, f.vcs, f.vppbs), (8, 2, 5));
    assert_eq!((f.mld_port, f.lds, f.dead_port), (Some(3), 2, Some(4)));
    assert_eq!(f.empty_ports, [5, 7]);
    assert!(!a.describe);
    for bad in [
        &["--fw-slots", "1"][..],
        &["--fw-slots", "5"],
        &["--ports", "300"],
        &["--ports", "4", "--vcs", "4"],
        &["--mld-port", "0"],
        &["--dead-port", "9"],
        &["--mld-port", "2", "--dead-port", "2"],
        &["--lds", "0"],
        &["--describe-json=1"],
    ] {
        assert!(with(bad).is_err(), "{bad:?}");
    }
    // --describe-json needs no socket.
    let a = args(&[
        "--describe-json",
        "--personality",
        "switch",
        "--mld-port",
        "2",
    ])
    .unwrap()
    .unwrap();
    assert!(a.describe);
    let v = describe(&a.device);
    assert_eq!(v["personality"], "switch");
    assert_eq!(v["ports"][2]["device"]["kind"], "mld");
    assert_eq!(v["ports"][2]["device"]["lds"].as_array().unwrap().len(), 4);
    assert_eq!(v["firmware"]["slots"][0]["revision"], "swcci-emu 1.0");
    assert_eq!(v["vcs"][0]["vppbs"][1]["status"], "bound-ld");
    let m = args(&["--describe-json", "--personality", "mmpt"])
        .unwrap()
        .unwrap();
    let v = describe(&m.device);
    assert_eq!(v["device"], 0x5c02);
    assert!(v.get("ports").is_none());
}

#[test]
fn regions_and_irqs() {
    let dc = DeviceConfig::new(Personality::Switch);
    let r = regions(&dc);
    assert_eq!(r.len(), VFIO_PCI_NUM_REGIONS as usize);
    assert_eq!(r[0].region_info.size, 0x10000);
    assert_eq!(r[1].region_info.size, 0);
    assert_eq!(r[2].region_info.size, 0x1000);
    assert_eq!(r[7].region_info.size, 0x1000);
    let i = irq_infos(&dc);
    assert_eq!(i[VFIO_PCI_MSIX_IRQ_INDEX as usize].count, 16);
    assert_eq!(i[0].count, 0, "no INTx");
    let no = DeviceConfig { msix: false, ..dc };
    assert_eq!(regions(&no)[2].region_info.size, 0);
    assert_eq!(irq_infos(&no)[VFIO_PCI_MSIX_IRQ_INDEX as usize].count, 0);
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "swcci-emu-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn stale_sockets() {
    let d = temp_dir();
    let s = d.join("s");
    drop(std::os::unix::net::UnixListener::bind(&s).unwrap());
    assert!(s.exists());
    remove_stale_socket(&s).unwrap();
    assert!(!s.exists());
    remove_stale_socket(&s).unwrap();
    let _live = std::os::unix::net::UnixListener::bind(&s).unwrap();
    assert!(remove_stale_socket(&s).is_err(), "in use");
    let f = d.join("f");
    std::fs::write(&f, b"x").unwrap();
    assert!(remove_stale_socket(&f).is_err(), "not a socket");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The vfio-user client as the driver's register and configuration space access.
struct Remote(RefCell<vfio_user::Client>);

impl Remote {
    fn read(&self, region: u32, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.0
            .borrow_mut()
            .region_read(region, off, &mut b)
            .unwrap();
        b
    }
    fn write(&self, region: u32, off: u64, data: &[u8]) {
        self.0.borrow_mut().region_write(region, off, data).unwrap();
    }
}

impl swcci_proto::discover::ConfigSpace for Remote {
    fn read32(&self, off: u16) -> Option<u32> {
        let b = self.read(VFIO_PCI_CONFIG_REGION_INDEX, off.into(), 4);
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }
}

impl RegIo for Remote {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        let b = self.read(0, off as u64, 4);
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| IoError::Range)?,
        ))
    }
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        let b = self.read(0, off as u64, 8);
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| IoError::Range)?,
        ))
    }
    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        self.write(0, off as u64, &val.to_le_bytes());
        Ok(())
    }
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        self.write(0, off as u64, &val.to_le_bytes());
        Ok(())
    }
}

/// Real time, 1 ms steps.
struct Sleeper {
    deadline: Instant,
}

impl Wait for Sleeper {
    fn begin(&mut self, _: Event, timeout_us: u64) {
        self.deadline = Instant::now() + Duration::from_micros(timeout_us);
    }
    fn wait(&mut self, _: Event) -> Result<(), WaitError> {
        if Instant::now() >= self.deadline {
            return Err(WaitError::Timeout);
        }
        std::thread::sleep(Duration::from_millis(1));
        Ok(())
    }
}

fn eventfd() -> File {
    // SAFETY: eventfd(2) with valid flags returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0);
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    unsafe { File::from_raw_fd(fd) }
}

fn eventfd_count(f: &mut File) -> u64 {
    let mut b = [0u8; 8];
    match f.read(&mut b) {
        Ok(8) => u64::from_ne_bytes(b),
        _ => 0,
    }
}

/// Reads the eventfd until it has counted `want` signals in all, for up to 5 s.
fn eventfd_wait(f: &mut File, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        got += eventfd_count(f);
        std::thread::sleep(Duration::from_millis(1));
    }
    got + eventfd_count(f)
}

fn control(stream: &mut UnixStream, reader: &mut impl BufRead, cmd: &str) -> String {
    stream.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn serves_a_vfio_user_client() {
    let d = temp_dir();
    let sock = d.join("emu.sock");
    let ctl = d.join("ctl.sock");
    let a = args(&[
        "--socket",
        sock.to_str().unwrap(),
        "--personality",
        "switch",
        "--control",
        ctl.to_str().unwrap(),
        "--serial",
        "0x77",
    ])
    .unwrap()
    .unwrap();
    let emu = Emulator::start(&a).unwrap();
    let server = std::thread::spawn(move || emu.run());

    let client = vfio_user::Client::new(&sock).unwrap();
    assert_eq!(
        client.region(VFIO_PCI_CONFIG_REGION_INDEX).unwrap().size,
        0x1000
    );
    assert_eq!(client.region(0).unwrap().size, 0x10000);
    assert_eq!(client.region(2).unwrap().size, 0x1000);
    let r = Remote(RefCell::new(client));
    let info =
        r.0.borrow_mut()
            .get_irq_info(VFIO_PCI_MSIX_IRQ_INDEX)
            .unwrap();
    assert_eq!((info.count, info.flags), (16, VFIO_IRQ_INFO_EVENTFD));

    // Configuration space: ids, BAR sizing, command register.
    assert_eq!(r.read(7, 0, 4), [0x36, 0x1b, 0x01, 0x5c]);
    r.write(7, 0x10, &[0xff; 4]);
    assert_eq!(r.read(7, 0x10, 4), 0xffff_0004u32.to_le_bytes());
    r.write(7, 0x10, &0xfe00_0000u32.to_le_bytes());
    r.write(7, 0x04, &0x0006u16.to_le_bytes());
    assert_eq!(r.read(7, 0x04, 2), [6, 0]);
    assert_eq!(r.read(7, 0, 4096).len(), 4096);

    // The driver's discovery and engine through vfio-user.
    let blocks = register_blocks(&r).unwrap();
    let block = *blocks.iter().next().unwrap();
    let found = scan_block(&r, 0x10000, &block, true).unwrap();
    let mut w = Sleeper {
        deadline: Instant::now(),
    };
    let mut mbox = Mailbox::init(&r, &mut w, found.mailbox, Timeouts::DEFAULT).unwrap();
    let mut efd = eventfd();
    r.0.borrow_mut()
        .set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            1,
            1,
            &[efd.as_raw_fd()],
        )
        .unwrap();
    mbox.set_interrupts(&r, true, true).unwrap();
    let mut out = [0u8; 64];
    let resp = mbox
        .execute(&r, &mut w, &Request::new(0x0001, &[]), &mut out)
        .unwrap();
    assert!(resp.rc.is_success());
    let id = Identify::decode(&out[..resp.out_len]).unwrap();
    assert_eq!(
        (id.vendor_id, id.device_id, id.serial),
        (0x1b36, 0x5c01, 0x77)
    );
    assert_eq!(eventfd_count(&mut efd), 1, "doorbell interrupt on vector 1");

    // A background command completes by itself (the ticker) and interrupts.
    let resp = mbox
        .start(
            &r,
            &mut w,
            &Request::new(device::OP_SLEEP, &30u32.to_le_bytes()),
            &mut out,
        )
        .unwrap();
    assert!(mbox.is_background(&resp));
    assert_eq!(eventfd_count(&mut efd), 1);
    assert_eq!(
        eventfd_wait(&mut efd, 1),
        1,
        "background completion without any access"
    );
    let bg = mbox.bg_status(&r).unwrap();
    assert_eq!((bg.opcode(), bg.percent()), (device::OP_SLEEP, 100));

    // The control channel, including a partial line.
    let mut c = UnixStream::connect(&ctl).unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    c.write_all(b"pi").unwrap();
    c.flush().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(control(&mut c, &mut reader, "ng"), "ok pong");
    assert_eq!(control(&mut c, &mut reader, "get commands"), "ok 2");
    assert_eq!(control(&mut c, &mut reader, "get irqs"), "ok 3");
    assert_eq!(
        control(&mut c, &mut reader, "get last-opcode"),
        "ok 0xc000 0x0000"
    );
    assert!(control(&mut c, &mut reader, "frobnicate").starts_with("err "));
    assert_eq!(control(&mut c, &mut reader, "spurious-irq 3"), "ok 3");
    assert_eq!(eventfd_wait(&mut efd, 3), 3);
    // A second connection at the same time.
    let mut c2 = UnixStream::connect(&ctl).unwrap();
    let mut reader2 = BufReader::new(c2.try_clone().unwrap());
    assert_eq!(control(&mut c2, &mut reader2, "rc 0x1234"), "ok");
    drop((c2, reader2));
    let resp = mbox
        .execute(&r, &mut w, &Request::new(0x0001, &[]), &mut out)
        .unwrap();
    assert_eq!(resp.rc.raw(), 0x1234);
    assert_eq!(control(&mut c, &mut reader, "surprise-remove"), "ok");
    assert_eq!(r.read32(0).unwrap(), u32::MAX);
    assert_eq!(control(&mut c, &mut reader, "clear"), "ok");

    // An FLR through configuration space resets the mailbox.
    mbox.set_interrupts(&r, true, true).unwrap();
    r.write(7, (config::CAP_PCIE + 8) as u64, &0x8000u16.to_le_bytes());
    assert_eq!(
        r.read32(found.mailbox.base + 4).unwrap() & 0x6,
        0,
        "interrupt enables off"
    );
    assert_eq!(control(&mut c, &mut reader, "get stat resets"), "ok 1");

    // QEMU goes away: the server returns and cleans up.
    drop(r);
    server.join().unwrap().unwrap();
    assert!(!ctl.exists(), "control socket removed");
    assert!(!sock.exists(), "vfio-user socket removed");
    std::fs::remove_dir_all(&d).unwrap();
}
