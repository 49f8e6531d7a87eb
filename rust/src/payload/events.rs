// SPDX-License-Identifier: GPL-2.0

//! Events, CXL r3.1 §8.2.9.2: Get Event Records (0100h, §8.2.9.2.2), Clear Event Records
//! (0101h, §8.2.9.2.3), Get Event Interrupt Policy (0102h, §8.2.9.2.4) and Set Event Interrupt
//! Policy (0103h, §8.2.9.2.5); the Common Event Record (§8.2.9.2.1) every record starts with;
//! and the records a switch logs, the Fabric Management event records of CXL r3.1 §7.6.8:
//! Physical Switch (§7.6.8.1), Virtual CXL Switch (§7.6.8.2) and MLD Port (§7.6.8.3).
//!
//! A device keeps its records in five logs ([`EventLog`]). Get Event Records returns the
//! oldest records of one log, as many as fit the output payload, and keeps them: only Clear
//! Event Records (by handle, oldest first) removes them, so a host that does not clear sees
//! the same records again. The Event Status register (CXL r3.1 §8.2.8.3.1,
//! [`EventStatus`](crate::regs::EventStatus)) says which logs hold records, and the Event
//! Interrupt Policy says whether a log going from empty to holding records raises an MSI/MSI-X
//! interrupt.
//!
//! Both directions of every payload are here, so that the library and the device emulator
//! agree on them. Records of a type this module does not decode are kept as their 80 data bytes
//! ([`EventBody::Other`]) with the UUID of their header.

use crate::payload::logs::Uuid;
use crate::payload::switch::{
    named_enum, BindingStatus, ConnectedMode, ConnectedType, Ltssm, PortConfigState, PortInfo,
};
use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Size of one event record in bytes (CXL r3.1 §8.2.9.2.1: every record type is 128 bytes).
pub const EVENT_RECORD_LEN: usize = 0x80;
/// Size of the Common Event Record header in bytes.
pub const COMMON_HEADER_LEN: usize = 0x30;
/// Size of the record-specific data after the header, in bytes.
pub const EVENT_DATA_LEN: usize = EVENT_RECORD_LEN - COMMON_HEADER_LEN;
/// Size of the Get Event Records output header, before the records (CXL r3.1 Table 8-53).
pub const GET_EVENTS_HEADER_LEN: usize = 0x20;
/// Size of the Get Event Records input: the event log (CXL r3.1 Table 8-52).
pub const GET_EVENTS_INPUT_LEN: usize = 1;
/// Size of the Clear Event Records input before its handles (CXL r3.1 Table 8-54).
pub const CLEAR_EVENTS_HEADER_LEN: usize = 6;
/// Most handles one Clear Event Records carries (its count is one byte).
pub const CLEAR_EVENTS_MAX_HANDLES: usize = 0xff;
/// Size of an Event Interrupt Policy without the Dynamic Capacity setting (CXL r3.1 Table
/// 8-55; devices without a Dynamic Capacity Event Log may omit it).
pub const INTERRUPT_POLICY_LEN: usize = 4;
/// Size of an Event Interrupt Policy with the Dynamic Capacity setting.
pub const INTERRUPT_POLICY_DC_LEN: usize = 5;

/// Get Event Records output flag bit 0: the log overflowed; the overflow count and
/// timestamps are valid.
pub const GET_EVENTS_OVERFLOW: u8 = 1 << 0;
/// Get Event Records output flag bit 1: the log holds more records than this output carries.
pub const GET_EVENTS_MORE_RECORDS: u8 = 1 << 1;
/// Clear Event Records flag bit 0: clear every record of the log (allowed only after it
/// overflowed; the handle count must then be 0).
pub const CLEAR_ALL_EVENTS: u8 = 1 << 0;

/// An event log (the Event Log byte of Get and Clear Event Records, CXL r3.1 Table 8-52; the
/// bit of the Event Status register is the same number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventLog {
    /// 00h: Informational Event Log.
    Informational,
    /// 01h: Warning Event Log.
    Warning,
    /// 02h: Failure Event Log.
    Failure,
    /// 03h: Fatal Event Log.
    Fatal,
    /// 04h: Dynamic Capacity Event Log (Dynamic Capacity Devices only).
    DynamicCapacity,
}

impl EventLog {
    /// Every log, by number.
    pub const ALL: [Self; 5] = [
        Self::Informational,
        Self::Warning,
        Self::Failure,
        Self::Fatal,
        Self::DynamicCapacity,
    ];

    /// The log of a raw Event Log value; `None` for a reserved value.
    pub const fn from_raw(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Informational),
            1 => Some(Self::Warning),
            2 => Some(Self::Failure),
            3 => Some(Self::Fatal),
            4 => Some(Self::DynamicCapacity),
            _ => None,
        }
    }

    /// The raw Event Log value.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Informational => 0,
            Self::Warning => 1,
            Self::Failure => 2,
            Self::Fatal => 3,
            Self::DynamicCapacity => 4,
        }
    }

    /// Its name: `informational`, `warning`, `failure`, `fatal`, `dynamic-capacity`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Warning => "warning",
            Self::Failure => "failure",
            Self::Fatal => "fatal",
            Self::DynamicCapacity => "dynamic-capacity",
        }
    }

    /// Its bit in the Event Status register (CXL r3.1 §8.2.8.3.1).
    pub const fn status_bit(self) -> u32 {
        1 << self.raw()
    }
}

impl fmt::Display for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Event Record Severity, bits 1:0 of the Event Record Flags (CXL r3.1 §8.2.9.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// 00b: informational.
    Informational,
    /// 01b: warning.
    Warning,
    /// 10b: failure.
    Failure,
    /// 11b: fatal.
    Fatal,
}

impl Severity {
    /// The severity in bits 1:0 of `flags`.
    pub const fn from_flags(flags: u32) -> Self {
        match flags & 3 {
            0 => Self::Informational,
            1 => Self::Warning,
            2 => Self::Failure,
            _ => Self::Fatal,
        }
    }

    /// Its value in bits 1:0 of the flags.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Informational => 0,
            Self::Warning => 1,
            Self::Failure => 2,
            Self::Fatal => 3,
        }
    }

    /// The severity of records kept in `log` (the Dynamic Capacity log's are informational).
    pub const fn of_log(log: EventLog) -> Self {
        match log {
            EventLog::Informational | EventLog::DynamicCapacity => Self::Informational,
            EventLog::Warning => Self::Warning,
            EventLog::Failure => Self::Failure,
            EventLog::Fatal => Self::Fatal,
        }
    }

    /// Its name: `informational`, `warning`, `failure`, `fatal`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Warning => "warning",
            Self::Failure => "failure",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Event Record Flags beyond the severity (CXL r3.1 §8.2.9.2.1; the LD-ID and Head-ID valid
/// bits are CXL r3.2's, reserved in r3.1).
pub mod record_flag {
    /// Permanent Condition.
    pub const PERMANENT_CONDITION: u32 = 1 << 2;
    /// Maintenance Needed.
    pub const MAINTENANCE_NEEDED: u32 = 1 << 3;
    /// Performance Degraded.
    pub const PERFORMANCE_DEGRADED: u32 = 1 << 4;
    /// Hardware Replacement Needed.
    pub const HARDWARE_REPLACEMENT_NEEDED: u32 = 1 << 5;
    /// Maintenance Operation Subclass Valid.
    pub const MAINT_OP_SUBCLASS_VALID: u32 = 1 << 6;
    /// LD ID Valid (CXL r3.2).
    pub const LD_ID_VALID: u32 = 1 << 7;
    /// Head ID Valid (CXL r3.2).
    pub const HEAD_ID_VALID: u32 = 1 << 8;
    /// Bits 1:0 hold the severity, not a flag.
    pub const SEVERITY_MASK: u32 = 3;
    /// The flags field is 24 bits wide.
    pub const MASK: u32 = 0x00ff_ffff;

    /// Names of the flag bits, for display.
    pub const NAMES: &[(u32, &str)] = &[
        (PERMANENT_CONDITION, "permanent-condition"),
        (MAINTENANCE_NEEDED, "maintenance-needed"),
        (PERFORMANCE_DEGRADED, "performance-degraded"),
        (HARDWARE_REPLACEMENT_NEEDED, "hardware-replacement-needed"),
        (MAINT_OP_SUBCLASS_VALID, "maint-op-subclass-valid"),
        (LD_ID_VALID, "ld-id-valid"),
        (HEAD_ID_VALID, "head-id-valid"),
    ];
}

/// The Common Event Record: the first 30h bytes of every event record (CXL r3.1 §8.2.9.2.1,
/// Common Event Record Format). Bytes 22h-24h (LD ID, Head ID) are CXL r3.2's, valid when
/// their flags say so; r3.1 reserves them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CommonHeader {
    /// Event Record Identifier: the UUID of the record type.
    pub uuid: Uuid,
    /// Event Record Length: valid bytes of the record, header included (80h for every type
    /// defined).
    pub length: u8,
    /// Event Record Flags (24 bits): severity in bits 1:0, [`record_flag`] above.
    pub flags: u32,
    /// Event Record Handle: names the record in Clear Event Records (never 0).
    pub handle: u16,
    /// Related Event Record Handle: a record this one relates to (0: none).
    pub related_handle: u16,
    /// Event Record Timestamp: when the device logged it, in nanoseconds since the Unix epoch
    /// by the device's clock (Set Timestamp, CXL r3.1 §8.2.9.4).
    pub timestamp: u64,
    /// Maintenance Operation Class (0: no maintenance operation).
    pub maint_op_class: u8,
    /// Maintenance Operation Subclass (valid with [`record_flag::MAINT_OP_SUBCLASS_VALID`]).
    pub maint_op_subclass: u8,
    /// LD ID (CXL r3.2; valid with [`record_flag::LD_ID_VALID`]).
    pub ld_id: u16,
    /// Head ID (CXL r3.2; valid with [`record_flag::HEAD_ID_VALID`]).
    pub head_id: u8,
}

impl CommonHeader {
    /// The severity (flags bits 1:0).
    pub const fn severity(&self) -> Severity {
        Severity::from_flags(self.flags)
    }

    /// The flag bits other than the severity.
    pub const fn flag_bits(&self) -> u32 {
        self.flags & !record_flag::SEVERITY_MASK & record_flag::MASK
    }

    /// Decodes the header from the first [`COMMON_HEADER_LEN`] bytes of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let uuid = Uuid(r.array("event_record_identifier")?);
        let length = r.u8("event_record_length")?;
        let flags = r.u24("event_record_flags")?;
        let handle = r.u16("event_record_handle")?;
        let related_handle = r.u16("related_event_record_handle")?;
        let timestamp = r.u64("event_record_timestamp")?;
        let maint_op_class = r.u8("maintenance_operation_class")?;
        let maint_op_subclass = r.u8("maintenance_operation_subclass")?;
        let ld_id = r.u16("ld_id")?;
        let head_id = r.u8("head_id")?;
        r.skip("reserved", 0x0b)?;
        Ok(Self {
            uuid,
            length,
            flags,
            handle,
            related_handle,
            timestamp,
            maint_op_class,
            maint_op_subclass,
            ld_id,
            head_id,
        })
    }

    /// Appends the header ([`COMMON_HEADER_LEN`] bytes) to `w`. Flags above 24 bits are
    /// [`EncodeError::Invalid`].
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.flags & !record_flag::MASK != 0 {
            return Err(EncodeError::Invalid {
                what: "event record flags (24 bits)",
            });
        }
        w.bytes(&self.uuid.0)?;
        w.u8(self.length)?;
        let [f0, f1, f2, _] = self.flags.to_le_bytes();
        w.bytes(&[f0, f1, f2])?;
        w.u16(self.handle)?;
        w.u16(self.related_handle)?;
        w.u64(self.timestamp)?;
        w.u8(self.maint_op_class)?;
        w.u8(self.maint_op_subclass)?;
        w.u16(self.ld_id)?;
        w.u8(self.head_id)?;
        w.zeros(0x0b)
    }
}

/// Physical Switch Event Record (CXL r3.1 §7.6.8.1).
pub const PHYSICAL_SWITCH_EVENT_UUID: Uuid = Uuid::from_fields(
    0x77cf_9271,
    0x9c02,
    0x470b,
    [0x9f, 0xe4, 0xbc, 0x7b, 0x75, 0xf2, 0xda, 0x97],
);
/// Virtual CXL Switch Event Record (CXL r3.1 §7.6.8.2).
pub const VIRTUAL_SWITCH_EVENT_UUID: Uuid = Uuid::from_fields(
    0x40d2_6425,
    0x3396,
    0x4c4d,
    [0xa5, 0xda, 0x3d, 0x47, 0x26, 0x3a, 0xf4, 0x25],
);
/// MLD Port Event Record (CXL r3.1 §7.6.8.3).
pub const MLD_PORT_EVENT_UUID: Uuid = Uuid::from_fields(
    0x8dc4_4363,
    0x0c96,
    0x4710,
    [0xb7, 0xbf, 0x04, 0xbb, 0x99, 0x53, 0x4c, 0x3f],
);
/// General Media Event Record of memory devices (CXL r3.1 §8.2.9.2.1.1; not decoded here).
pub const GENERAL_MEDIA_EVENT_UUID: Uuid = Uuid::from_fields(
    0xfbcd_0a77,
    0xc260,
    0x417f,
    [0x85, 0xa9, 0x08, 0x8b, 0x16, 0x21, 0xeb, 0xa6],
);
/// DRAM Event Record of memory devices (CXL r3.1 §8.2.9.2.1.2; not decoded here).
pub const DRAM_EVENT_UUID: Uuid = Uuid::from_fields(
    0x601d_cbb3,
    0x9c06,
    0x4eab,
    [0xb8, 0xaf, 0x4e, 0x9b, 0xfb, 0x5c, 0x96, 0x24],
);
/// Memory Module Event Record of memory devices (CXL r3.1 §8.2.9.2.1.3; not decoded here).
pub const MEMORY_MODULE_EVENT_UUID: Uuid = Uuid::from_fields(
    0xfe92_7475,
    0xdd59,
    0x4339,
    [0xa5, 0x86, 0x79, 0xba, 0xb1, 0x13, 0xb7, 0x74],
);
/// Dynamic Capacity Event Record (CXL r3.1 §8.2.9.2.1.6; not decoded here).
pub const DYNAMIC_CAPACITY_EVENT_UUID: Uuid = Uuid::from_fields(
    0xca95_afa7,
    0xf183,
    0x4018,
    [0x8c, 0x2f, 0x95, 0x26, 0x8e, 0x10, 0x1a, 0x2a],
);

/// The short name of a record type the specification defines: `physical-switch`,
/// `virtual-switch`, `mld-port`, and the memory device records this module names without
/// decoding (`general-media`, `dram`, `memory-module`, `dynamic-capacity`).
pub fn record_type_name(uuid: &Uuid) -> Option<&'static str> {
    match *uuid {
        PHYSICAL_SWITCH_EVENT_UUID => Some("physical-switch"),
        VIRTUAL_SWITCH_EVENT_UUID => Some("virtual-switch"),
        MLD_PORT_EVENT_UUID => Some("mld-port"),
        GENERAL_MEDIA_EVENT_UUID => Some("general-media"),
        DRAM_EVENT_UUID => Some("dram"),
        MEMORY_MODULE_EVENT_UUID => Some("memory-module"),
        DYNAMIC_CAPACITY_EVENT_UUID => Some("dynamic-capacity"),
        _ => None,
    }
}

named_enum! {
    /// Event Type of a Physical Switch Event Record (CXL r3.1 §7.6.8.1).
    PhysicalEventType {
        0 LinkStateChange "link-state-change",
        1 SlotStatusUpdated "slot-status-register-updated",
    }
}

named_enum! {
    /// Event Type of a Virtual CXL Switch Event Record (CXL r3.1 §7.6.8.2).
    VirtualEventType {
        0 BindingChange "binding-change",
        1 SecondaryBusReset "secondary-bus-reset",
        2 LinkControlUpdated "link-control-register-updated",
        3 SlotControlUpdated "slot-control-register-updated",
    }
}

named_enum! {
    /// Event Type of an MLD Port Event Record (CXL r3.1 §7.6.8.3): the PCIe error message the
    /// switch received from the MLD.
    MldEventType {
        0 Correctable "err-cor-received",
        1 NonFatal "err-nonfatal-received",
        2 Fatal "err-fatal-received",
    }
}

/// A Physical Switch Event Record's data (CXL r3.1 §7.6.8.1): an event of a physical port,
/// with the port's state as Get Physical Port State (5101h) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysicalSwitchEvent {
    /// Physical Port ID: the port that generated the event.
    pub port_id: u8,
    /// Event Type.
    pub event_type: PhysicalEventType,
    /// Slot Status register of the port (PCIe Base Specification).
    pub slot_status: u16,
    /// The port's state (record bytes 35h-42h, the fields of a Get Physical Port State port
    /// information block): `port_id` repeats [`Self::port_id`], and `supported_ld_count` is 0
    /// (the record has no such field). Widths and speeds are bits 5:0 of their bytes.
    pub port: PortInfo,
}

impl PhysicalSwitchEvent {
    /// Decodes the record data (the bytes from offset 30h of the record).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let port_id = r.u8("physical_port_id")?;
        let event_type = PhysicalEventType::from_raw(r.u8("event_type")?);
        let slot_status = r.u16("slot_status_register")?;
        r.skip("reserved", 1)?;
        let config_state =
            PortConfigState::from_raw(r.u8("current_port_configuration_state")? & 0xf);
        let connected_mode = ConnectedMode::from_raw(r.u8("connected_device_mode")? & 0xf);
        r.skip("reserved", 1)?;
        let connected_type = ConnectedType::from_raw(r.u8("connected_device_type")?);
        let supported_cxl_modes = r.u8("supported_cxl_modes")?;
        let max_link_width = r.u8("maximum_link_width")? & 0x3f;
        let negotiated_link_width = r.u8("negotiated_link_width")? & 0x3f;
        let supported_speeds = r.u8("supported_link_speeds_vector")? & 0x3f;
        let max_link_speed = r.u8("max_link_speed")? & 0x3f;
        let current_link_speed = r.u8("current_link_speed")? & 0x3f;
        let ltssm = Ltssm::from_raw(r.u8("ltssm_state")?);
        let first_lane = r.u8("first_negotiated_lane_number")?;
        let link_state = r.u16("link_state_flags")?;
        Ok(Self {
            port_id,
            event_type,
            slot_status,
            port: PortInfo {
                port_id,
                config_state,
                connected_mode,
                connected_type,
                supported_cxl_modes,
                max_link_width,
                negotiated_link_width,
                supported_speeds,
                max_link_speed,
                current_link_speed,
                ltssm,
                first_lane,
                link_state,
                supported_ld_count: 0,
            },
        })
    }

    /// The record data ([`EVENT_DATA_LEN`] bytes, reserved bytes zero). Fields wider than the
    /// record's (a configuration state above 4 bits, widths and speeds above 6) are
    /// [`EncodeError::Invalid`].
    pub fn data(&self) -> Result<[u8; EVENT_DATA_LEN], EncodeError> {
        let p = &self.port;
        let six = |v: u8, what: &'static str| {
            if v > 0x3f {
                Err(EncodeError::Invalid { what })
            } else {
                Ok(v)
            }
        };
        if p.config_state.raw() > 0xf || p.connected_mode.raw() > 0xf {
            return Err(EncodeError::Invalid {
                what: "port configuration state or connected device mode (4 bits)",
            });
        }
        let mut out = [0u8; EVENT_DATA_LEN];
        let mut w = Writer::new(&mut out);
        w.u8(self.port_id)?;
        w.u8(self.event_type.raw())?;
        w.u16(self.slot_status)?;
        w.u8(0)?;
        w.u8(p.config_state.raw())?;
        w.u8(p.connected_mode.raw())?;
        w.u8(0)?;
        w.u8(p.connected_type.raw())?;
        w.u8(p.supported_cxl_modes)?;
        w.u8(six(p.max_link_width, "maximum link width (6 bits)")?)?;
        w.u8(six(
            p.negotiated_link_width,
            "negotiated link width (6 bits)",
        )?)?;
        w.u8(six(p.supported_speeds, "supported link speeds (6 bits)")?)?;
        w.u8(six(p.max_link_speed, "max link speed (6 bits)")?)?;
        w.u8(six(p.current_link_speed, "current link speed (6 bits)")?)?;
        w.u8(p.ltssm.raw())?;
        w.u8(p.first_lane)?;
        w.u16(p.link_state)?;
        Ok(out)
    }
}

/// A Virtual CXL Switch Event Record's data (CXL r3.1 §7.6.8.2): an event of a vPPB. For a
/// binding change, the binding is the vPPB's after the change; the switch logs successful binds
/// and unbinds in the Informational Event Log and failed ones in the Warning Event Log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualSwitchEvent {
    /// VCS ID.
    pub vcs_id: u8,
    /// vPPB ID.
    pub vppb_id: u8,
    /// Event Type.
    pub event_type: VirtualEventType,
    /// vPPB Binding Status (as in Get Virtual CXL Switch Info, 5200h).
    pub binding: BindingStatus,
    /// vPPB Port ID: the physical port it is bound to.
    pub port_id: u8,
    /// vPPB LD ID: the LD it is bound to.
    pub ld_id: u8,
    /// Link Control register value of the vPPB (PCIe Base Specification).
    pub link_control: u16,
    /// Slot Control register value of the vPPB (PCIe Base Specification).
    pub slot_control: u16,
}

impl VirtualSwitchEvent {
    /// Decodes the record data (the bytes from offset 30h of the record).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        Ok(Self {
            vcs_id: r.u8("vcs_id")?,
            vppb_id: r.u8("vppb_id")?,
            event_type: VirtualEventType::from_raw(r.u8("event_type")?),
            binding: BindingStatus::from_raw(r.u8("vppb_binding_status")?),
            port_id: r.u8("vppb_port_id")?,
            ld_id: r.u8("vppb_ld_id")?,
            link_control: r.u16("link_control_register_value")?,
            slot_control: r.u16("slot_control_register_value")?,
        })
    }

    /// The record data ([`EVENT_DATA_LEN`] bytes, reserved bytes zero).
    pub fn data(&self) -> [u8; EVENT_DATA_LEN] {
        let mut out = [0u8; EVENT_DATA_LEN];
        let [lc0, lc1] = self.link_control.to_le_bytes();
        let [sc0, sc1] = self.slot_control.to_le_bytes();
        let fields = [
            self.vcs_id,
            self.vppb_id,
            self.event_type.raw(),
            self.binding.raw(),
            self.port_id,
            self.ld_id,
            lc0,
            lc1,
            sc0,
            sc1,
        ];
        for (o, v) in out.iter_mut().zip(fields) {
            *o = v;
        }
        out
    }
}

/// An MLD Port Event Record's data (CXL r3.1 §7.6.8.3): an error message the switch received
/// on a port connected to an MLD. Correctable errors go to the Warning Event Log, non-fatal
/// and fatal ones to the Failure Event Log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MldPortEvent {
    /// Event Type.
    pub event_type: MldEventType,
    /// Port ID: the MLD port that generated the event.
    pub port_id: u8,
    /// Error Message: the first 8 bytes of the PCIe error message (ERR_COR, ERR_NONFATAL or
    /// ERR_FATAL) the switch received.
    pub error_message: [u8; 8],
}

impl MldPortEvent {
    /// Decodes the record data (the bytes from offset 30h of the record).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let event_type = MldEventType::from_raw(r.u8("event_type")?);
        let port_id = r.u8("port_id")?;
        r.skip("reserved", 2)?;
        Ok(Self {
            event_type,
            port_id,
            error_message: r.array("error_message")?,
        })
    }

    /// The record data ([`EVENT_DATA_LEN`] bytes, reserved bytes zero).
    pub fn data(&self) -> [u8; EVENT_DATA_LEN] {
        let mut out = [0u8; EVENT_DATA_LEN];
        let head = [self.event_type.raw(), self.port_id, 0, 0];
        for (o, v) in out.iter_mut().zip(head.iter().chain(&self.error_message)) {
            *o = *v;
        }
        out
    }

    /// The log the specification puts this event in (CXL r3.1 §7.6.8.3): Warning for a
    /// correctable error, Failure otherwise.
    pub const fn log(&self) -> EventLog {
        match self.event_type {
            MldEventType::Correctable => EventLog::Warning,
            _ => EventLog::Failure,
        }
    }
}

/// The data of a record, decoded by its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBody<'a> {
    /// A Physical Switch Event Record.
    PhysicalSwitch(PhysicalSwitchEvent),
    /// A Virtual CXL Switch Event Record.
    VirtualSwitch(VirtualSwitchEvent),
    /// An MLD Port Event Record.
    MldPort(MldPortEvent),
    /// A record of another type: its [`EVENT_DATA_LEN`] data bytes, undecoded.
    Other(&'a [u8]),
}

/// One event record: the common header and the record-specific data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// The Common Event Record.
    pub header: CommonHeader,
    /// The [`EVENT_DATA_LEN`] bytes after the header.
    pub data: &'a [u8],
}

impl<'a> EventRecord<'a> {
    /// Decodes a record from the first [`EVENT_RECORD_LEN`] bytes of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let header = CommonHeader::decode(buf)?;
        let mut r = Reader::new(buf);
        r.skip("common event record", COMMON_HEADER_LEN)?;
        Ok(Self {
            header,
            data: r.bytes("event record data", EVENT_DATA_LEN)?,
        })
    }

    /// The data decoded by the record's type (the UUID of its header). The data is always
    /// long enough for the record types decoded here, so this cannot fail; values a field does
    /// not define are kept as the enums' `Other`.
    pub fn body(&self) -> EventBody<'a> {
        let data = self.data;
        let decoded = match self.header.uuid {
            PHYSICAL_SWITCH_EVENT_UUID => PhysicalSwitchEvent::decode(data)
                .ok()
                .map(EventBody::PhysicalSwitch),
            VIRTUAL_SWITCH_EVENT_UUID => VirtualSwitchEvent::decode(data)
                .ok()
                .map(EventBody::VirtualSwitch),
            MLD_PORT_EVENT_UUID => MldPortEvent::decode(data).ok().map(EventBody::MldPort),
            _ => None,
        };
        decoded.unwrap_or(EventBody::Other(data))
    }
}

/// Encodes a record ([`EVENT_RECORD_LEN`] bytes) of `header` and `data` (at most
/// [`EVENT_DATA_LEN`] bytes; the rest is zero) into `out`; returns its length.
pub fn encode_record(
    out: &mut [u8],
    header: &CommonHeader,
    data: &[u8],
) -> Result<usize, EncodeError> {
    if data.len() > EVENT_DATA_LEN {
        return Err(EncodeError::Invalid {
            what: "event record data (80 bytes at most)",
        });
    }
    let mut w = Writer::new(out);
    header.encode(&mut w)?;
    w.bytes(data)?;
    w.zeros(EVENT_DATA_LEN.saturating_sub(data.len()))?;
    Ok(w.len())
}

/// Encodes a Get Event Records input (CXL r3.1 Table 8-52): the raw Event Log value (any
/// value, so that tests can send reserved ones).
pub const fn get_events_request(log: u8) -> [u8; GET_EVENTS_INPUT_LEN] {
    [log]
}

/// The Get Event Records output header (CXL r3.1 Table 8-53).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GetEventsHeader {
    /// Flags: [`GET_EVENTS_OVERFLOW`], [`GET_EVENTS_MORE_RECORDS`] (the others reserved).
    pub flags: u8,
    /// Overflow Error Count: records the device could not log (valid with the overflow flag).
    pub overflow_count: u16,
    /// First Overflow Event Timestamp, ns (valid with the overflow flag).
    pub first_overflow: u64,
    /// Last Overflow Event Timestamp, ns (valid with the overflow flag).
    pub last_overflow: u64,
    /// Event Record Count: records in this output.
    pub count: u16,
}

impl GetEventsHeader {
    /// Whether the log overflowed.
    pub const fn overflow(&self) -> bool {
        self.flags & GET_EVENTS_OVERFLOW != 0
    }

    /// Whether the log holds more records than this output carries.
    pub const fn more(&self) -> bool {
        self.flags & GET_EVENTS_MORE_RECORDS != 0
    }

    /// Appends the header ([`GET_EVENTS_HEADER_LEN`] bytes) to `w`.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.flags)?;
        w.u8(0)?;
        w.u16(self.overflow_count)?;
        w.u64(self.first_overflow)?;
        w.u64(self.last_overflow)?;
        w.u16(self.count)?;
        w.zeros(0x0a)
    }
}

/// Get Event Records output: the header and the records it announces.
#[derive(Clone, Copy, Debug)]
pub struct EventRecords<'a> {
    /// The header.
    pub header: GetEventsHeader,
    records: &'a [u8],
}

impl<'a> EventRecords<'a> {
    /// Decodes the output; every record the count announces must be present (bytes after them
    /// are ignored).
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let flags = r.u8("flags")?;
        r.skip("reserved", 1)?;
        let overflow_count = r.u16("overflow_error_count")?;
        let first_overflow = r.u64("first_overflow_event_timestamp")?;
        let last_overflow = r.u64("last_overflow_event_timestamp")?;
        let count = r.u16("event_record_count")?;
        r.skip("reserved", 0x0a)?;
        let records = r.bytes(
            "event records",
            usize::from(count).saturating_mul(EVENT_RECORD_LEN),
        )?;
        Ok(Self {
            header: GetEventsHeader {
                flags,
                overflow_count,
                first_overflow,
                last_overflow,
                count,
            },
            records,
        })
    }

    /// Number of records.
    pub const fn len(&self) -> usize {
        self.header.count as usize
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = EventRecord<'a>> + 'a {
        self.records
            .chunks_exact(EVENT_RECORD_LEN)
            .filter_map(|b| EventRecord::decode(b).ok())
    }
}

/// Encodes a Get Event Records output of `header` and `records` (each [`EVENT_RECORD_LEN`]
/// bytes, as [`encode_record`] makes them) into `out`; returns its length. The header's count
/// must be the number of records ([`EncodeError::Invalid`] otherwise).
pub fn encode_event_records(
    out: &mut [u8],
    header: &GetEventsHeader,
    records: &[[u8; EVENT_RECORD_LEN]],
) -> Result<usize, EncodeError> {
    if usize::from(header.count) != records.len() {
        return Err(EncodeError::Invalid {
            what: "event record count",
        });
    }
    let mut w = Writer::new(out);
    header.encode(&mut w)?;
    for r in records {
        w.bytes(r)?;
    }
    Ok(w.len())
}

/// Encodes a Clear Event Records input (CXL r3.1 Table 8-54) that clears `handles` of log
/// `log` (a raw Event Log value); returns its length. More than
/// [`CLEAR_EVENTS_MAX_HANDLES`] handles is [`EncodeError::Invalid`].
pub fn clear_events_request(
    out: &mut [u8],
    log: u8,
    handles: &[u16],
) -> Result<usize, EncodeError> {
    let n = u8::try_from(handles.len()).map_err(|_| EncodeError::Invalid {
        what: "number of event record handles (255 at most)",
    })?;
    let mut w = Writer::new(out);
    w.u8(log)?;
    w.u8(0)?;
    w.u8(n)?;
    w.zeros(3)?;
    for h in handles {
        w.u16(*h)?;
    }
    Ok(w.len())
}

/// Encodes a Clear Event Records input that clears every record of log `log` (Clear All
/// Events; the device allows it only after the log overflowed).
pub const fn clear_all_events_request(log: u8) -> [u8; CLEAR_EVENTS_HEADER_LEN] {
    [log, CLEAR_ALL_EVENTS, 0, 0, 0, 0]
}

/// A decoded Clear Event Records input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClearEvents<'a> {
    /// The raw Event Log value.
    pub log: u8,
    /// Clear Event Flags.
    pub flags: u8,
    handles: &'a [u8],
}

impl<'a> ClearEvents<'a> {
    /// Decodes the input; every handle the count announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let log = r.u8("event_log")?;
        let flags = r.u8("clear_event_flags")?;
        let n = r.u8("number_of_event_record_handles")?;
        r.skip("reserved", 3)?;
        let handles = r.bytes("event_record_handles", usize::from(n).saturating_mul(2))?;
        Ok(Self {
            log,
            flags,
            handles,
        })
    }

    /// Whether Clear All Events is set.
    pub const fn clear_all(&self) -> bool {
        self.flags & CLEAR_ALL_EVENTS != 0
    }

    /// Number of handles.
    pub const fn len(&self) -> usize {
        self.handles.len() / 2
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.handles.len() < 2
    }

    /// The handles, in the order given.
    pub fn handles(&self) -> impl Iterator<Item = u16> + 'a {
        self.handles.chunks_exact(2).map(|h| {
            let mut b = [0u8; 2];
            b.copy_from_slice(h);
            u16::from_le_bytes(b)
        })
    }
}

/// Interrupt Mode of an event log's interrupt settings (bits 1:0, CXL r3.1 Table 8-55).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptMode {
    /// 00b: no interrupts.
    None,
    /// 01b: MSI/MSI-X, on the message number the device reports.
    MsiMsix,
    /// 10b: firmware interrupt (Event Firmware Notification), on the message number the host
    /// gives.
    Firmware,
    /// 11b: reserved.
    Reserved,
}

impl InterruptMode {
    /// The mode in bits 1:0 of `v`.
    pub const fn from_raw(v: u8) -> Self {
        match v & 3 {
            0 => Self::None,
            1 => Self::MsiMsix,
            2 => Self::Firmware,
            _ => Self::Reserved,
        }
    }

    /// Its 2-bit value.
    pub const fn raw(self) -> u8 {
        match self {
            Self::None => 0,
            Self::MsiMsix => 1,
            Self::Firmware => 2,
            Self::Reserved => 3,
        }
    }

    /// Its name: `none`, `msi-msix`, `firmware`, `reserved`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MsiMsix => "msi-msix",
            Self::Firmware => "firmware",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for InterruptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One event log's interrupt settings byte (CXL r3.1 Table 8-55): the mode in bits 1:0, the
/// interrupt message number in bits 7:4 (for MSI/MSI-X the vector the device uses, reported by
/// Get Event Interrupt Policy; for a firmware interrupt the one the host asks for with Set
/// Event Interrupt Policy, which ignores it in the other modes). Bits 3:2 are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InterruptSetting(pub u8);

impl InterruptSetting {
    /// No interrupts.
    pub const NONE: Self = Self(0);

    /// A setting of `mode` and message number `msgnum` (0..=15; higher bits are dropped).
    pub const fn new(mode: InterruptMode, msgnum: u8) -> Self {
        Self(((msgnum & 0xf) << 4) | mode.raw())
    }

    /// The interrupt mode.
    pub const fn mode(self) -> InterruptMode {
        InterruptMode::from_raw(self.0)
    }

    /// The interrupt message number (bits 7:4).
    pub const fn msgnum(self) -> u8 {
        self.0 >> 4
    }

    /// Whether reserved bits 3:2 are set.
    pub const fn reserved_bits(self) -> bool {
        self.0 & 0x0c != 0
    }
}

/// An Event Interrupt Policy: Get Event Interrupt Policy output and Set Event Interrupt Policy
/// input (CXL r3.1 Tables 8-55 and 8-56).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InterruptPolicy {
    /// Informational Event Log Interrupt Settings.
    pub informational: InterruptSetting,
    /// Warning Event Log Interrupt Settings.
    pub warning: InterruptSetting,
    /// Failure Event Log Interrupt Settings.
    pub failure: InterruptSetting,
    /// Fatal Event Log Interrupt Settings.
    pub fatal: InterruptSetting,
    /// Dynamic Capacity Event Log Interrupt Settings (`None`: the payload has 4 bytes, as a
    /// device without a Dynamic Capacity Event Log may send and take it).
    pub dynamic_capacity: Option<InterruptSetting>,
}

impl InterruptPolicy {
    /// Decodes a policy: 4 bytes, and a fifth (Dynamic Capacity) when present.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let informational = InterruptSetting(r.u8("informational_event_log_interrupt_settings")?);
        let warning = InterruptSetting(r.u8("warning_event_log_interrupt_settings")?);
        let failure = InterruptSetting(r.u8("failure_event_log_interrupt_settings")?);
        let fatal = InterruptSetting(r.u8("fatal_event_log_interrupt_settings")?);
        let dynamic_capacity = r.u8("dynamic_capacity_event_log_interrupt_settings").ok();
        Ok(Self {
            informational,
            warning,
            failure,
            fatal,
            dynamic_capacity: dynamic_capacity.map(InterruptSetting),
        })
    }

    /// Encodes the policy ([`INTERRUPT_POLICY_LEN`] bytes, or [`INTERRUPT_POLICY_DC_LEN`]
    /// with a Dynamic Capacity setting); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        for s in [self.informational, self.warning, self.failure, self.fatal] {
            w.u8(s.0)?;
        }
        if let Some(dc) = self.dynamic_capacity {
            w.u8(dc.0)?;
        }
        Ok(w.len())
    }

    /// The setting of `log` (`None` for the Dynamic Capacity log when the policy has none).
    pub const fn setting(&self, log: EventLog) -> Option<InterruptSetting> {
        match log {
            EventLog::Informational => Some(self.informational),
            EventLog::Warning => Some(self.warning),
            EventLog::Failure => Some(self.failure),
            EventLog::Fatal => Some(self.fatal),
            EventLog::DynamicCapacity => self.dynamic_capacity,
        }
    }

    /// The policy with `log`'s setting replaced by `s`.
    #[must_use]
    pub const fn with(mut self, log: EventLog, s: InterruptSetting) -> Self {
        match log {
            EventLog::Informational => self.informational = s,
            EventLog::Warning => self.warning = s,
            EventLog::Failure => self.failure = s,
            EventLog::Fatal => self.fatal = s,
            EventLog::DynamicCapacity => self.dynamic_capacity = Some(s),
        }
        self
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
