// SPDX-License-Identifier: GPL-2.0

//! The control channel of an emulated device (tools/emu/src/control.rs): a virtio serial
//! port named `swcci.emuN`, one command line in, one reply line out.

use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// A connection to one emulator.
pub struct Ctl {
    name: String,
    file: File,
    buf: Vec<u8>,
}

fn port_path(name: &str) -> Result<PathBuf> {
    for e in fs::read_dir("/sys/class/virtio-ports").context("read /sys/class/virtio-ports")? {
        let e = e?;
        let n = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if n.trim() == name {
            return Ok(PathBuf::from("/dev").join(e.file_name()));
        }
    }
    bail!("no virtio serial port named {name}")
}

impl Ctl {
    /// Opens the control channel `name`.
    pub fn open(name: &str) -> Result<Self> {
        let path = port_path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let mut c = Self {
            name: name.to_string(),
            file,
            buf: Vec::new(),
        };
        // Anything left over from an earlier user is stale: resynchronise on a ping.
        c.cmd("ping")?;
        Ok(c)
    }

    fn read_line(&mut self) -> Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line).trim().to_string());
            }
            let mut pfd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
            if n == 0 {
                bail!("{}: no reply within 10 s", self.name);
            }
            let mut chunk = [0u8; 512];
            let n = self
                .file
                .read(&mut chunk)
                .with_context(|| format!("read {}", self.name))?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `line` and returns the reply after `ok` (fails on `err`).
    pub fn cmd(&mut self, line: &str) -> Result<String> {
        writeln!(self.file, "{line}").with_context(|| format!("write {}", self.name))?;
        loop {
            let reply = self.read_line()?;
            // A stale pong from an interrupted earlier exchange: skip it unless we pinged.
            if reply == "ok pong" && line != "ping" {
                continue;
            }
            if let Some(rest) = reply.strip_prefix("ok") {
                return Ok(rest.trim().to_string());
            }
            bail!("{}: `{line}`: {reply}", self.name);
        }
    }

    /// A numeric query (`get NAME`).
    pub fn get(&mut self, what: &str) -> Result<u64> {
        let v = self.cmd(&format!("get {what}"))?;
        v.parse()
            .with_context(|| format!("{}: get {what}: {v:?}", self.name))
    }
}
