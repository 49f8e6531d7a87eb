// SPDX-License-Identifier: GPL-2.0

//! A simulated Dynamic Capacity Device for the library's host tests (behind a port of
//! `crate::sim::SimSwitch`, `SimDev::Dcd`): the FM-API DCD Management commands (CXL r3.1
//! §7.6.7.6) over a model of regions, pending adds and the extents each host accepted, with
//! the checks QEMU 11.1's type-3 device makes (hw/cxl/cxl-mailbox-utils.c) and their return
//! codes. Responses are written byte by byte from the specification's layouts, independently
//! of the encoders under test. The host's side (accepting an add, giving capacity up) is
//! played by the test through [`SimDcd::host_accept`] and [`SimDcd::host_release`].

const MIB: u64 = 1 << 20;

/// An extent: start DPA, length, tag.
pub type SimExtent = (u64, u64, [u8; 16]);

/// The model.
#[derive(Debug)]
pub struct SimDcd {
    /// Hosts served.
    pub hosts: u8,
    /// Regions: base, length, block size, sanitize on release.
    pub regions: Vec<(u64, u64, u64, bool)>,
    /// Supported block sizes of every region.
    pub block_mask: u64,
    /// Selection policies supported (bit n = policy n).
    pub selection: u16,
    /// Removal policies supported.
    pub removal: u16,
    /// Extents the device can track.
    pub max_extents: u32,
    /// Adds not yet accepted: host and extents.
    pub pending: Vec<(u16, Vec<SimExtent>)>,
    /// Accepted extents of each host.
    pub held: Vec<Vec<SimExtent>>,
    /// Releases the hosts have not answered yet.
    pub releasing: Vec<(u16, Vec<SimExtent>)>,
    /// Generation number of each host's list.
    pub generation: Vec<u32>,
    /// Pages of Get DC Region Extent Lists after which the list "changes" (the generation
    /// number moves), to exercise the restart.
    pub churn: usize,
}

impl SimDcd {
    /// Two hosts; two regions of 256 MiB with 2 MiB blocks after 256 MiB of static memory
    /// (QEMU's layout); block sizes 2 and 4 MiB; policies Free and Prescriptive; removal
    /// Tag-based and Prescriptive; 64 extents.
    pub fn new() -> Self {
        Self {
            hosts: 2,
            regions: vec![
                (256 * MIB, 256 * MIB, 2 * MIB, false),
                (512 * MIB, 256 * MIB, 2 * MIB, false),
            ],
            block_mask: (2 * MIB) | (4 * MIB),
            selection: 0b101,
            removal: 0b11,
            max_extents: 64,
            pending: Vec::new(),
            held: vec![Vec::new(), Vec::new()],
            releasing: Vec::new(),
            generation: vec![0, 0],
            churn: 0,
        }
    }

    fn tracked(&self) -> u32 {
        let n: usize = self.pending.iter().map(|g| g.1.len()).sum::<usize>()
            + self.held.iter().map(Vec::len).sum::<usize>();
        n as u32
    }

    /// The host accepts the oldest pending add, entirely (its Add Dynamic Capacity Response).
    pub fn host_accept(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let (host, x) = self.pending.remove(0);
        let h = usize::from(host);
        self.held[h].extend(x);
        self.generation[h] += 1;
        true
    }

    /// The host gives up everything it was asked to release (Release Dynamic Capacity).
    pub fn host_release(&mut self) {
        for (host, x) in std::mem::take(&mut self.releasing) {
            self.remove(usize::from(host), &x);
        }
    }

    fn remove(&mut self, h: usize, x: &[SimExtent]) {
        for &(d, l, _) in x {
            let mut next = Vec::new();
            for &(s, n, t) in &self.held[h] {
                let (e, end) = (s + n, d + l);
                if end <= s || d >= e {
                    next.push((s, n, t));
                    continue;
                }
                if d > s {
                    next.push((s, d - s, t));
                }
                if end < e {
                    next.push((end, e - end, t));
                }
            }
            self.held[h] = next;
        }
        self.generation[h] += 1;
    }

    fn region_of(&self, d: u64, l: u64) -> Option<&(u64, u64, u64, bool)> {
        self.regions
            .iter()
            .find(|r| d >= r.0 && d.checked_add(l).is_some_and(|e| e <= r.0 + r.1))
    }

    fn busy(&self, d: u64, l: u64) -> bool {
        let over = |&(s, n, _): &SimExtent| d < s + n && s < d + l;
        self.pending.iter().flat_map(|g| g.1.iter()).any(over)
            || self.held.iter().flatten().any(over)
    }

    fn le64(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 8)
            .map_or(0, |x| u64::from_le_bytes(x.try_into().unwrap_or([0; 8])))
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        b.get(at..at + 4)
            .map_or(0, |x| u32::from_le_bytes(x.try_into().unwrap_or([0; 4])))
    }

    fn le16(b: &[u8], at: usize) -> u16 {
        b.get(at..at + 2)
            .map_or(0, |x| u16::from_le_bytes(x.try_into().unwrap_or([0; 2])))
    }

    fn extent_bytes(out: &mut Vec<u8>, &(d, l, t): &SimExtent) {
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&l.to_le_bytes());
        out.extend_from_slice(&t);
        out.extend_from_slice(&[0; 8]);
    }

    /// The extents of an add or release request, or the return code that refuses them.
    fn extents_in(&self, input: &[u8]) -> Result<Vec<SimExtent>, u16> {
        let n = Self::le32(input, 0x1c) as usize;
        if input.len() < 0x20 + n * 0x28 {
            return Err(0x16);
        }
        let mut x: Vec<SimExtent> = Vec::new();
        for i in 0..n {
            let at = 0x20 + i * 0x28;
            let (d, l) = (Self::le64(input, at), Self::le64(input, at + 8));
            let mut t = [0u8; 16];
            t.copy_from_slice(&input[at + 16..at + 32]);
            let Some(r) = self.region_of(d, l) else {
                return Err(0x0f);
            };
            if l == 0 || (d - r.0) % r.2 != 0 || l % r.2 != 0 {
                return Err(0x1e);
            }
            if x.iter().any(|&(s, m, _)| d < s + m && s < d + l) {
                return Err(0x1e);
            }
            x.push((d, l, t));
        }
        Ok(x)
    }

    /// Answers one command sent through the tunnel: the return code and the output.
    pub fn answer(&mut self, opcode: u16, input: &[u8], room: usize) -> (u16, Vec<u8>) {
        match opcode {
            0x5600 => {
                let mut b = vec![self.hosts, self.regions.len() as u8, 0, 0];
                b.extend_from_slice(&self.selection.to_le_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&self.removal.to_le_bytes());
                b.extend_from_slice(&[0b01, 0]); // region 0's sanitize setting configurable
                let total: u64 = self.regions.iter().map(|r| r.1).sum();
                b.extend_from_slice(&(total / (256 * MIB)).to_le_bytes());
                for i in 0..8 {
                    let m = if i < self.regions.len() {
                        self.block_mask
                    } else {
                        0
                    };
                    b.extend_from_slice(&m.to_le_bytes());
                }
                (0, b)
            }
            0x5601 => {
                let (host, count, start) = (Self::le16(input, 0), input[2], input[3]);
                if host >= u16::from(self.hosts) || usize::from(start) >= self.regions.len() {
                    return (0x02, Vec::new());
                }
                let fit = (room - 20) / 40;
                let list: Vec<_> = self
                    .regions
                    .iter()
                    .skip(usize::from(start))
                    .take(usize::from(count).min(fit))
                    .collect();
                let mut b = host.to_le_bytes().to_vec();
                b.extend_from_slice(&[self.regions.len() as u8, list.len() as u8]);
                for &&(base, len, block, san) in &list {
                    for v in [base, len / (256 * MIB), len, block] {
                        b.extend_from_slice(&v.to_le_bytes());
                    }
                    b.extend_from_slice(&[0, 0, 0, 0, u8::from(san), 0, 0, 0]);
                }
                let avail = self.max_extents - self.tracked();
                for v in [self.max_extents, avail, 0, 0] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                (0, b)
            }
            0x5602 => {
                let (id, block, san) = (usize::from(input[0]), Self::le64(input, 4), input[12]);
                let Some(&(base, len, _, old)) = self.regions.get(id) else {
                    return (0x02, Vec::new());
                };
                if !block.is_power_of_two() || block & self.block_mask == 0 {
                    return (0x02, Vec::new());
                }
                if self.busy(base, len) || ((san & 1 != 0) != old && id != 0) {
                    return (0x03, Vec::new());
                }
                self.regions[id] = (base, len, block, san & 1 != 0);
                (0, Vec::new())
            }
            0x5603 => {
                let (host, count, start) = (
                    usize::from(Self::le16(input, 0)),
                    Self::le32(input, 4) as usize,
                    Self::le32(input, 8) as usize,
                );
                if host >= usize::from(self.hosts) || start > self.held[host].len() {
                    return (0x02, Vec::new());
                }
                if start > 0 && self.churn > 0 {
                    self.churn -= 1;
                    self.generation[host] += 1;
                }
                let fit = (room - 24) / 40;
                let list: Vec<SimExtent> = self.held[host]
                    .iter()
                    .skip(start)
                    .take(count.min(fit))
                    .copied()
                    .collect();
                let mut b = (host as u16).to_le_bytes().to_vec();
                b.extend_from_slice(&[0, 0]);
                for v in [
                    start as u32,
                    list.len() as u32,
                    self.held[host].len() as u32,
                    self.generation[host],
                    0,
                ] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                for e in &list {
                    Self::extent_bytes(&mut b, e);
                }
                (0, b)
            }
            0x5604 => {
                let (host, policy, region, len) = (
                    Self::le16(input, 0),
                    input[2] & 0xf,
                    usize::from(input[3]),
                    Self::le64(input, 4),
                );
                if self.selection & (1 << policy) == 0 || host >= u16::from(self.hosts) {
                    return (0x02, Vec::new());
                }
                let x = match policy {
                    2 => match self.extents_in(input) {
                        Ok(x) => x,
                        Err(rc) => return (rc, Vec::new()),
                    },
                    0 => {
                        // Free: the lowest free blocks of the region, one extent.
                        let Some(&(base, rlen, block, _)) = self.regions.get(region) else {
                            return (0x02, Vec::new());
                        };
                        let mut d = base;
                        while d + len <= base + rlen && self.busy(d, len) {
                            d += block;
                        }
                        if d + len > base + rlen {
                            return (0x1d, Vec::new());
                        }
                        vec![(d, len, [0; 16])]
                    }
                    _ => return (0x02, Vec::new()),
                };
                if x.iter().any(|e| self.busy(e.0, e.1)) {
                    return (0x1e, Vec::new());
                }
                if self.tracked() + x.len() as u32 > self.max_extents {
                    return (0x1d, Vec::new());
                }
                self.pending.push((host, x));
                (0, Vec::new())
            }
            0x5605 => {
                let (host, flags) = (Self::le16(input, 0), input[2]);
                let policy = flags & 0xf;
                if self.removal & (1 << policy) == 0 || host >= u16::from(self.hosts) {
                    return (0x02, Vec::new());
                }
                let h = usize::from(host);
                let x: Vec<SimExtent> = if policy == 0 {
                    let mut t = [0u8; 16];
                    t.copy_from_slice(&input[12..28]);
                    self.held[h].iter().filter(|e| e.2 == t).copied().collect()
                } else {
                    match self.extents_in(input) {
                        Ok(x) => x,
                        Err(rc) => return (rc, Vec::new()),
                    }
                };
                let held = |&(d, l, _): &SimExtent| {
                    self.held[h]
                        .iter()
                        .any(|&(s, n, _)| d >= s && d + l <= s + n)
                };
                if x.is_empty() || !x.iter().all(held) {
                    return (0x0f, Vec::new());
                }
                if flags & 0x10 != 0 {
                    self.remove(h, &x);
                } else {
                    self.releasing.push((host, x));
                }
                (0, Vec::new())
            }
            _ => (0x03, Vec::new()),
        }
    }
}
