// SPDX-License-Identifier: GPL-2.0

//! FM-API switch commands, CXL r3.1 §7.6.7.1-§7.6.7.2: Identify Switch Device (5100h), Get
//! Physical Port State (5101h), Physical Port Control (5102h), Get Virtual CXL Switch Info
//! (5200h), Bind vPPB (5201h) and Unbind vPPB (5202h).

use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Size of the Identify Switch Device output.
pub const IDENTIFY_SWITCH_LEN: usize = 0x49;
/// Size of a Get Physical Port State port information block.
pub const PORT_INFO_LEN: usize = 16;
/// Size of the Get Physical Port State output header.
pub const PORT_STATE_HEADER: usize = 4;

/// Identify Switch Device output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentifySwitch {
    /// Port id of the port the command arrived on.
    pub ingress_port: u8,
    /// Number of physical ports.
    pub num_physical_ports: u8,
    /// Number of virtual CXL switches.
    pub num_vcs: u8,
    /// Bitmask of active physical port ids.
    pub active_ports: [u8; 32],
    /// Bitmask of active VCS ids.
    pub active_vcs: [u8; 32],
    /// Total vPPBs.
    pub total_vppbs: u16,
    /// Bound vPPBs.
    pub bound_vppbs: u16,
    /// HDM decoders per upstream port.
    pub hdm_decoders: u8,
}

/// Iterates over the set bits of a 256-bit mask.
pub fn mask_bits(mask: &[u8; 32]) -> impl Iterator<Item = u8> + '_ {
    (0u8..=255).filter(move |&i| {
        mask.get(usize::from(i / 8))
            .is_some_and(|b| b & (1u8 << (i % 8)) != 0)
    })
}

impl IdentifySwitch {
    /// Decodes the output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let ingress_port = r.u8("ingress_port")?;
        r.skip("reserved", 1)?;
        Ok(Self {
            ingress_port,
            num_physical_ports: r.u8("num_physical_ports")?,
            num_vcs: r.u8("num_vcs")?,
            active_ports: r.array("active_port_bitmask")?,
            active_vcs: r.array("active_vcs_bitmask")?,
            total_vppbs: r.u16("total_vppbs")?,
            bound_vppbs: r.u16("bound_vppbs")?,
            hdm_decoders: r.u8("hdm_decoders")?,
        })
    }

    /// Encodes the output payload ([`IDENTIFY_SWITCH_LEN`] bytes); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.ingress_port)?;
        w.u8(0)?;
        w.u8(self.num_physical_ports)?;
        w.u8(self.num_vcs)?;
        w.bytes(&self.active_ports)?;
        w.bytes(&self.active_vcs)?;
        w.u16(self.total_vppbs)?;
        w.u16(self.bound_vppbs)?;
        w.u8(self.hdm_decoders)?;
        Ok(w.len())
    }

    /// Ids of the active ports.
    pub fn active_port_ids(&self) -> impl Iterator<Item = u8> + '_ {
        mask_bits(&self.active_ports)
    }

    /// Ids of the active VCSs.
    pub fn active_vcs_ids(&self) -> impl Iterator<Item = u8> + '_ {
        mask_bits(&self.active_vcs)
    }
}

/// Encodes a Get Physical Port State request for `ports`.
pub fn port_state_request(out: &mut [u8], ports: &[u8]) -> Result<usize, EncodeError> {
    let n = u8::try_from(ports.len()).map_err(|_| EncodeError::Invalid {
        what: "number of ports",
    })?;
    let mut w = Writer::new(out);
    w.u8(n)?;
    w.bytes(ports)?;
    Ok(w.len())
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($v:literal $variant:ident $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $(
                #[doc = $text]
                $variant,
            )*
            /// A value the specification does not define.
            Other(u8),
        }

        impl $name {
            /// Decodes the raw value.
            pub const fn from_raw(v: u8) -> Self {
                match v {
                    $($v => Self::$variant,)*
                    v => Self::Other(v),
                }
            }

            /// The raw value.
            pub const fn raw(self) -> u8 {
                match self {
                    $(Self::$variant => $v,)*
                    Self::Other(v) => v,
                }
            }

            /// The specification's name, if defined.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$variant => Some($text),)*
                    Self::Other(_) => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown ({:02x}h)", self.raw()),
                }
            }
        }
    };
}
// Also used by the event records (`payload::events`).
pub(crate) use named_enum;

named_enum! {
    /// Current port configuration state.
    PortConfigState {
        0 Disabled "disabled",
        1 BindInProgress "bind-in-progress",
        2 UnbindInProgress "unbind-in-progress",
        3 Downstream "DSP",
        4 Upstream "USP",
        5 Fabric "fabric",
        0xf InvalidPortId "invalid-port-id",
    }
}

named_enum! {
    /// Connected device mode (CXL r3.x; r2.0 called it the connected CXL version).
    ConnectedMode {
        0 NotCxl "not-cxl-or-disconnected",
        1 Rcd "rcd",
        2 Flit68Vh "68b-flit-vh",
        3 Flit256 "256b-flit",
        4 Flit256LatencyOpt "256b-latency-optimized",
        5 Pbr "pbr",
    }
}

named_enum! {
    /// Connected device type.
    ConnectedType {
        0 None "none",
        1 Pcie "pcie",
        2 Type1 "cxl-type-1",
        3 Type2 "cxl-type-2",
        4 Type3Sld "cxl-type-3-sld",
        5 Type3Mld "cxl-type-3-mld",
        6 PbrComponent "pbr-component",
    }
}

named_enum! {
    /// Link training and status state machine state.
    Ltssm {
        0 Detect "detect",
        1 Polling "polling",
        2 Configuration "configuration",
        3 Recovery "recovery",
        4 L0 "L0",
        5 L0s "L0s",
        6 L1 "L1",
        7 L2 "L2",
        8 Disabled "disabled",
        9 Loopback "loopback",
        10 HotReset "hot-reset",
    }
}

/// Names of the supported-CXL-modes bits.
pub const CXL_MODE_NAMES: &[(u8, &str)] = &[
    (1 << 0, "rcd"),
    (1 << 1, "68b-flit-vh"),
    (1 << 2, "256b-flit"),
    (1 << 3, "256b-latency-optimized"),
    (1 << 4, "pbr"),
];

/// Link state flag: PCIe reset (PERST#) asserted.
pub const LINK_PERST_ASSERTED: u16 = 1 << 1;
/// Names of the link state flags.
pub const LINK_FLAG_NAMES: &[(u16, &str)] = &[
    (1 << 0, "lane-reversal"),
    (LINK_PERST_ASSERTED, "perst-asserted"),
    (1 << 2, "prsnt-asserted"),
    (1 << 3, "power-off"),
];

/// A PCIe link speed in GT/s times ten, from the encoding used by the Link Capabilities
/// register (1 = 2.5 GT/s ... 6 = 64 GT/s).
pub const fn link_speed_decigt(code: u8) -> Option<u16> {
    match code {
        1 => Some(25),
        2 => Some(50),
        3 => Some(80),
        4 => Some(160),
        5 => Some(320),
        6 => Some(640),
        _ => None,
    }
}

/// Port information block of Get Physical Port State.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Port id.
    pub port_id: u8,
    /// Configuration state.
    pub config_state: PortConfigState,
    /// Connected device mode.
    pub connected_mode: ConnectedMode,
    /// Connected device type.
    pub connected_type: ConnectedType,
    /// Supported CXL modes bitmask, see [`CXL_MODE_NAMES`].
    pub supported_cxl_modes: u8,
    /// Maximum link width in lanes.
    pub max_link_width: u8,
    /// Negotiated link width in lanes.
    pub negotiated_link_width: u8,
    /// Supported link speeds vector (bit 0 = 2.5 GT/s ... bit 5 = 64 GT/s).
    pub supported_speeds: u8,
    /// Maximum link speed code, see [`link_speed_decigt`].
    pub max_link_speed: u8,
    /// Current link speed code.
    pub current_link_speed: u8,
    /// LTSSM state.
    pub ltssm: Ltssm,
    /// First negotiated lane number.
    pub first_lane: u8,
    /// Link state flags, see [`LINK_FLAG_NAMES`].
    pub link_state: u16,
    /// Supported LD count.
    pub supported_ld_count: u8,
}

impl PortInfo {
    /// Decodes one 16-byte block.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let port_id = r.u8("port_id")?;
        let config_state = PortConfigState::from_raw(r.u8("config_state")? & 0xf);
        let connected_mode = ConnectedMode::from_raw(r.u8("connected_device_mode")?);
        r.skip("reserved", 1)?;
        Ok(Self {
            port_id,
            config_state,
            connected_mode,
            connected_type: ConnectedType::from_raw(r.u8("connected_device_type")?),
            supported_cxl_modes: r.u8("supported_cxl_modes")?,
            max_link_width: r.u8("max_link_width")?,
            negotiated_link_width: r.u8("negotiated_link_width")?,
            supported_speeds: r.u8("supported_link_speeds")?,
            max_link_speed: r.u8("max_link_speed")?,
            current_link_speed: r.u8("current_link_speed")?,
            ltssm: Ltssm::from_raw(r.u8("ltssm_state")?),
            first_lane: r.u8("first_negotiated_lane")?,
            link_state: r.u16("link_state_flags")?,
            supported_ld_count: r.u8("supported_ld_count")?,
        })
    }

    /// Encodes one block ([`PORT_INFO_LEN`] bytes) with `w`.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.port_id)?;
        w.u8(self.config_state.raw() & 0xf)?;
        w.u8(self.connected_mode.raw())?;
        w.u8(0)?;
        w.u8(self.connected_type.raw())?;
        w.u8(self.supported_cxl_modes)?;
        w.u8(self.max_link_width)?;
        w.u8(self.negotiated_link_width)?;
        w.u8(self.supported_speeds)?;
        w.u8(self.max_link_speed)?;
        w.u8(self.current_link_speed)?;
        w.u8(self.ltssm.raw())?;
        w.u8(self.first_lane)?;
        w.u16(self.link_state)?;
        w.u8(self.supported_ld_count)
    }
}

/// Encodes a Get Physical Port State output listing `ports`; returns its length.
pub fn encode_port_states(out: &mut [u8], ports: &[PortInfo]) -> Result<usize, EncodeError> {
    let n = u8::try_from(ports.len()).map_err(|_| EncodeError::Invalid {
        what: "number of ports",
    })?;
    let mut w = Writer::new(out);
    w.u8(n)?;
    w.zeros(3)?;
    for p in ports {
        p.encode(&mut w)?;
    }
    Ok(w.len())
}

/// Get Physical Port State output.
#[derive(Clone, Copy, Debug)]
pub struct PortStates<'a> {
    blocks: &'a [u8],
}

impl<'a> PortStates<'a> {
    /// Decodes the output; every block the header announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let n = r.u8("num_ports")?;
        r.skip("reserved", 3)?;
        let blocks = r.bytes(
            "port information",
            usize::from(n).saturating_mul(PORT_INFO_LEN),
        )?;
        Ok(Self { blocks })
    }

    /// Number of ports.
    pub const fn len(&self) -> usize {
        self.blocks.len() / PORT_INFO_LEN
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ports.
    pub fn iter(&self) -> impl Iterator<Item = PortInfo> + 'a {
        self.blocks
            .chunks_exact(PORT_INFO_LEN)
            .filter_map(|b| PortInfo::decode(b).ok())
    }
}

/// Physical Port Control operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOp {
    /// Assert PERST#.
    AssertPerst,
    /// Deassert PERST#.
    DeassertPerst,
    /// Reset the PPB.
    ResetPpb,
}

impl PortOp {
    /// The raw operation code.
    pub const fn raw(self) -> u8 {
        match self {
            Self::AssertPerst => 0,
            Self::DeassertPerst => 1,
            Self::ResetPpb => 2,
        }
    }
}

/// Encodes a Physical Port Control request (2 bytes).
pub const fn port_control_request(ppb: u8, op: PortOp) -> [u8; 2] {
    [ppb, op.raw()]
}

/// Encodes a Get Virtual CXL Switch Info request.
pub fn vcs_info_request(
    out: &mut [u8],
    start_vppb: u8,
    vppb_limit: u8,
    vcs_ids: &[u8],
) -> Result<usize, EncodeError> {
    let n = u8::try_from(vcs_ids.len()).map_err(|_| EncodeError::Invalid {
        what: "number of VCSs",
    })?;
    let mut w = Writer::new(out);
    w.u8(start_vppb)?;
    w.u8(vppb_limit)?;
    w.u8(n)?;
    w.bytes(vcs_ids)?;
    Ok(w.len())
}

named_enum! {
    /// VCS state.
    VcsState {
        0 Disabled "disabled",
        1 Enabled "enabled",
        0xff Invalid "invalid-vcs-id",
    }
}

named_enum! {
    /// vPPB binding status.
    BindingStatus {
        0 Unbound "unbound",
        1 InProgress "bind-or-unbind-in-progress",
        2 BoundPort "bound-physical-port",
        3 BoundLd "bound-ld",
    }
}

/// One vPPB of a VCS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VppbInfo {
    /// Binding status.
    pub status: BindingStatus,
    /// Bound physical port id.
    pub port: u8,
    /// Bound LD id.
    pub ld: u8,
}

/// One VCS of a Get Virtual CXL Switch Info response.
#[derive(Clone, Copy, Debug)]
pub struct VcsInfo<'a> {
    /// VCS id.
    pub vcs_id: u8,
    /// State.
    pub state: VcsState,
    /// Upstream port id.
    pub usp_id: u8,
    /// Total number of vPPBs in the VCS.
    pub num_vppbs: u8,
    /// First vPPB listed.
    pub start_vppb: u8,
    vppbs: &'a [u8],
}

impl<'a> VcsInfo<'a> {
    /// The listed vPPBs, numbered from [`Self::start_vppb`].
    pub fn vppbs(&self) -> impl Iterator<Item = (u8, VppbInfo)> + 'a {
        let start = self.start_vppb;
        self.vppbs
            .chunks_exact(4)
            .zip(start..=u8::MAX)
            .map(|(b, id)| {
                let [s, p, l, _] =
                    [b.first(), b.get(1), b.get(2), b.get(3)].map(|x| x.copied().unwrap_or(0));
                (
                    id,
                    VppbInfo {
                        status: BindingStatus::from_raw(s),
                        port: p,
                        ld: l,
                    },
                )
            })
    }
}

/// Get Virtual CXL Switch Info output. Each VCS block lists the vPPBs from the request's start
/// vPPB, at most the request's limit: the decoder needs both to find where blocks end.
#[derive(Clone, Copy, Debug)]
pub struct VcsInfos<'a> {
    count: u8,
    body: &'a [u8],
    start_vppb: u8,
    vppb_limit: u8,
}

impl<'a> VcsInfos<'a> {
    /// Decodes a response to a request with `start_vppb` and `vppb_limit`.
    pub fn decode(buf: &'a [u8], start_vppb: u8, vppb_limit: u8) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let count = r.u8("num_vcs")?;
        r.skip("reserved", 3)?;
        let this = Self {
            count,
            body: r.rest(),
            start_vppb,
            vppb_limit,
        };
        // Validate every block up front so iteration cannot fail.
        let mut r = Reader::new(this.body);
        for _ in 0..count {
            this.next_block(&mut r)?;
        }
        Ok(this)
    }

    fn next_block(&self, r: &mut Reader<'a>) -> Result<VcsInfo<'a>, DecodeError> {
        let vcs_id = r.u8("vcs_id")?;
        let state = VcsState::from_raw(r.u8("vcs_state")?);
        let usp_id = r.u8("usp_id")?;
        let num_vppbs = r.u8("num_vppbs")?;
        let listed = num_vppbs
            .saturating_sub(self.start_vppb)
            .min(self.vppb_limit);
        let vppbs = r.bytes("vppb information", usize::from(listed).saturating_mul(4))?;
        Ok(VcsInfo {
            vcs_id,
            state,
            usp_id,
            num_vppbs,
            start_vppb: self.start_vppb,
            vppbs,
        })
    }

    /// Number of VCS blocks.
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The VCS blocks.
    pub fn iter(&self) -> impl Iterator<Item = VcsInfo<'a>> + '_ {
        let mut r = Reader::new(self.body);
        (0..self.count).map_while(move |_| self.next_block(&mut r).ok())
    }
}

/// One VCS block for [`encode_vcs_infos`]: the VCS and the vPPBs a request asked for (from its
/// start vPPB, at most its limit), in order.
#[derive(Clone, Copy, Debug)]
pub struct VcsBlock<'a> {
    /// VCS id.
    pub vcs_id: u8,
    /// State.
    pub state: VcsState,
    /// Upstream port id.
    pub usp_id: u8,
    /// Total number of vPPBs in the VCS.
    pub num_vppbs: u8,
    /// The listed vPPBs.
    pub vppbs: &'a [VppbInfo],
}

/// Encodes a Get Virtual CXL Switch Info output of `blocks`; returns its length.
pub fn encode_vcs_infos(out: &mut [u8], blocks: &[VcsBlock<'_>]) -> Result<usize, EncodeError> {
    let n = u8::try_from(blocks.len()).map_err(|_| EncodeError::Invalid {
        what: "number of VCSs",
    })?;
    let mut w = Writer::new(out);
    w.u8(n)?;
    w.zeros(3)?;
    for b in blocks {
        w.u8(b.vcs_id)?;
        w.u8(b.state.raw())?;
        w.u8(b.usp_id)?;
        w.u8(b.num_vppbs)?;
        for v in b.vppbs {
            w.bytes(&[v.status.raw(), v.port, v.ld, 0])?;
        }
    }
    Ok(w.len())
}

/// Decodes a Get Virtual CXL Switch Info input into `(start_vppb, vppb_limit, vcs_ids)`.
pub fn decode_vcs_info_request(buf: &[u8]) -> Result<(u8, u8, &[u8]), DecodeError> {
    let mut r = Reader::new(buf);
    let start = r.u8("start_vppb")?;
    let limit = r.u8("vppb_list_limit")?;
    let n = r.u8("num_vcs")?;
    Ok((start, limit, r.bytes("vcs_ids", usize::from(n))?))
}

/// Decodes a Get Physical Port State input into the list of port ids.
pub fn decode_port_state_request(buf: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.u8("num_ports")?;
    r.bytes("port_ids", usize::from(n))
}

/// LD id meaning "bind the physical port, not an LD".
pub const LD_NONE: u16 = 0xffff;

/// Encodes a Bind vPPB request (6 bytes).
pub const fn bind_vppb_request(vcs: u8, vppb: u8, port: u8, ld: u16) -> [u8; 6] {
    let [l0, l1] = ld.to_le_bytes();
    [vcs, vppb, port, 0, l0, l1]
}

/// A decoded Bind vPPB input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindVppb {
    /// VCS id.
    pub vcs: u8,
    /// vPPB index in the VCS.
    pub vppb: u8,
    /// Physical port id.
    pub port: u8,
    /// LD id, or [`LD_NONE`] to bind the port itself.
    pub ld: u16,
}

impl BindVppb {
    /// Decodes a Bind vPPB input.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let vcs = r.u8("vcs_id")?;
        let vppb = r.u8("vppb_id")?;
        let port = r.u8("physical_port_id")?;
        r.skip("reserved", 1)?;
        Ok(Self {
            vcs,
            vppb,
            port,
            ld: r.u16("ld_id")?,
        })
    }
}

/// Unbind vPPB options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnbindOption {
    /// Wait for the port link to go down.
    WaitLinkDown,
    /// Simulate a managed hot-remove.
    ManagedHotRemove,
    /// Simulate a surprise hot-remove.
    SurpriseHotRemove,
}

impl UnbindOption {
    /// The option for a raw code (bits 3:0 of the option byte), if it is one.
    pub const fn from_raw(v: u8) -> Option<Self> {
        match v & 0xf {
            0 => Some(Self::WaitLinkDown),
            1 => Some(Self::ManagedHotRemove),
            2 => Some(Self::SurpriseHotRemove),
            _ => None,
        }
    }
}

/// Decodes an Unbind vPPB input into `(vcs, vppb, option)`; an unknown option is
/// [`DecodeError::Invalid`].
pub fn decode_unbind_vppb_request(buf: &[u8]) -> Result<(u8, u8, UnbindOption), DecodeError> {
    let mut r = Reader::new(buf);
    let vcs = r.u8("vcs_id")?;
    let vppb = r.u8("vppb_id")?;
    let raw = r.u8("unbind_option")?;
    let o = UnbindOption::from_raw(raw).ok_or(DecodeError::Invalid {
        field: "unbind_option",
        value: u64::from(raw),
    })?;
    Ok((vcs, vppb, o))
}

/// Encodes an Unbind vPPB request (3 bytes).
pub const fn unbind_vppb_request(vcs: u8, vppb: u8, option: UnbindOption) -> [u8; 3] {
    let o = match option {
        UnbindOption::WaitLinkDown => 0,
        UnbindOption::ManagedHotRemove => 1,
        UnbindOption::SurpriseHotRemove => 2,
    };
    [vcs, vppb, o]
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
