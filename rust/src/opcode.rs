// SPDX-License-Identifier: GPL-2.0

//! Command opcodes (command set << 8 | command): generic commands (CXL r3.1 §8.2.9.1-§8.2.9.6),
//! memory device commands (§8.2.9.9) and FM-API commands (§7.6.7), with their names and whether
//! the specification defines them as free of side effects.
//!
//! The read-only list is the policy's source of truth for "this raw command cannot change device
//! or fabric state" (Documentation/access-control.rst): only what is listed `ro` here, or what a
//! device's Command Effects Log marks with no effects, runs without tainting the kernel.

/// Identify.
pub const IDENTIFY: u16 = 0x0001;
/// Background Operation Status.
pub const BG_OP_STATUS: u16 = 0x0002;
/// Get Response Message Limit.
pub const GET_RESPONSE_MSG_LIMIT: u16 = 0x0003;
/// Set Response Message Limit.
pub const SET_RESPONSE_MSG_LIMIT: u16 = 0x0004;
/// Request Abort Background Operation.
pub const REQUEST_ABORT_BG: u16 = 0x0005;
/// Get Event Records.
pub const GET_EVENT_RECORDS: u16 = 0x0100;
/// Clear Event Records.
pub const CLEAR_EVENT_RECORDS: u16 = 0x0101;
/// Get Event Interrupt Policy.
pub const GET_EVENT_INTERRUPT_POLICY: u16 = 0x0102;
/// Set Event Interrupt Policy.
pub const SET_EVENT_INTERRUPT_POLICY: u16 = 0x0103;
/// Get FW Info.
pub const GET_FW_INFO: u16 = 0x0200;
/// Transfer FW.
pub const TRANSFER_FW: u16 = 0x0201;
/// Activate FW.
pub const ACTIVATE_FW: u16 = 0x0202;
/// Get Timestamp.
pub const GET_TIMESTAMP: u16 = 0x0300;
/// Set Timestamp.
pub const SET_TIMESTAMP: u16 = 0x0301;
/// Get Supported Logs.
pub const GET_SUPPORTED_LOGS: u16 = 0x0400;
/// Get Log.
pub const GET_LOG: u16 = 0x0401;
/// Identify Memory Device.
pub const IDENTIFY_MEMDEV: u16 = 0x4000;
/// Identify Switch Device.
pub const IDENTIFY_SWITCH: u16 = 0x5100;
/// Get Physical Port State.
pub const GET_PHYS_PORT_STATE: u16 = 0x5101;
/// Physical Port Control.
pub const PHYS_PORT_CONTROL: u16 = 0x5102;
/// Send PPB CXL.io Configuration Request.
pub const SEND_PPB_CXLIO_CONFIG: u16 = 0x5103;
/// Get Virtual CXL Switch Info.
pub const GET_VCS_INFO: u16 = 0x5200;
/// Bind vPPB.
pub const BIND_VPPB: u16 = 0x5201;
/// Unbind vPPB.
pub const UNBIND_VPPB: u16 = 0x5202;
/// Tunnel Management Command.
pub const TUNNEL: u16 = 0x5300;
/// Get LD Info.
pub const GET_LD_INFO: u16 = 0x5400;
/// Get LD Allocations.
pub const GET_LD_ALLOCATIONS: u16 = 0x5401;
/// Set LD Allocations.
pub const SET_LD_ALLOCATIONS: u16 = 0x5402;
/// Get DCD Info.
pub const GET_DCD_INFO: u16 = 0x5600;
/// Get Host DC Region Configuration.
pub const GET_HOST_DC_REGION_CONFIG: u16 = 0x5601;
/// Set DC Region Configuration.
pub const SET_DC_REGION_CONFIG: u16 = 0x5602;
/// Get DC Region Extent Lists.
pub const GET_DC_REGION_EXTENT_LISTS: u16 = 0x5603;
/// Initiate Dynamic Capacity Add.
pub const INITIATE_DC_ADD: u16 = 0x5604;
/// Initiate Dynamic Capacity Release.
pub const INITIATE_DC_RELEASE: u16 = 0x5605;
/// Add Dynamic Capacity Response (the host's answer to an add, on the memory device's own
/// mailbox).
pub const ADD_DC_RESPONSE: u16 = 0x4802;
/// Release Dynamic Capacity (the host gives capacity up, on the memory device's own mailbox).
pub const RELEASE_DC: u16 = 0x4803;
// The PCI-SIG MMB commands (opcode vendor 0001h: Send Message 0100h, Receive Message 0101h)
// live in `crate::mmpt`; the opcodes here are CXL's (opcode vendor 0000h).

/// Command sets C0h-FFh are vendor specific.
pub const fn is_vendor_specific(opcode: u16) -> bool {
    (opcode >> 8) >= 0xc0
}

/// One known opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpcodeInfo {
    /// The opcode.
    pub opcode: u16,
    /// Its name in the specification.
    pub name: &'static str,
    /// The specification defines it as having no effect on device or fabric state.
    pub read_only: bool,
    /// A read of what a memory device holds for its host (label storage, poison addresses,
    /// scan results): behind a switch that is another host's data, which fwctl's lowest scopes
    /// do not reach through a tunnel ([`crate::effects::required_scope`]).
    pub host_data: bool,
}

macro_rules! opcode_table {
    ($($op:literal $ro:ident $name:literal;)*) => {
        /// Every opcode this project knows by name, sorted by opcode.
        pub const OPCODES: &[OpcodeInfo] = &[
            $(OpcodeInfo {
                opcode: $op,
                name: $name,
                read_only: opcode_table!(@ro $ro),
                host_data: opcode_table!(@host $ro),
            },)*
        ];
    };
    (@ro ro) => { true };
    (@ro hd) => { true };
    (@ro rw) => { false };
    (@host hd) => { true };
    (@host $other:ident) => { false };
}

// `ro`: read-only by the specification; `hd`: read-only, and reads a memory device's host data
// (see [`OpcodeInfo::host_data`]); `rw`: changes state.
opcode_table! {
    0x0001 ro "Identify";
    0x0002 ro "Background Operation Status";
    0x0003 ro "Get Response Message Limit";
    0x0004 rw "Set Response Message Limit";
    0x0005 rw "Request Abort Background Operation";
    0x0100 ro "Get Event Records";
    0x0101 rw "Clear Event Records";
    0x0102 ro "Get Event Interrupt Policy";
    0x0103 rw "Set Event Interrupt Policy";
    0x0104 ro "Get MCTP Event Interrupt Policy";
    0x0105 rw "Set MCTP Event Interrupt Policy";
    0x0106 rw "Event Notification";
    0x0200 ro "Get FW Info";
    0x0201 rw "Transfer FW";
    0x0202 rw "Activate FW";
    0x0300 ro "Get Timestamp";
    0x0301 rw "Set Timestamp";
    0x0400 ro "Get Supported Logs";
    0x0401 ro "Get Log";
    0x0402 ro "Get Log Capabilities";
    0x0403 rw "Clear Log";
    0x0404 rw "Populate Log";
    0x0405 ro "Get Supported Logs Sub-List";
    0x0500 ro "Get Supported Features";
    0x0501 ro "Get Feature";
    0x0502 rw "Set Feature";
    0x0600 rw "Perform Maintenance";
    0x4000 ro "Identify Memory Device";
    0x4100 ro "Get Partition Info";
    0x4101 rw "Set Partition Info";
    0x4102 hd "Get LSA";
    0x4103 rw "Set LSA";
    0x4200 ro "Get Health Info";
    0x4201 ro "Get Alert Configuration";
    0x4202 rw "Set Alert Configuration";
    0x4203 ro "Get Shutdown State";
    0x4204 rw "Set Shutdown State";
    0x4300 hd "Get Poison List";
    0x4301 rw "Inject Poison";
    0x4302 rw "Clear Poison";
    0x4303 ro "Get Scan Media Capabilities";
    0x4304 rw "Scan Media";
    0x4305 hd "Get Scan Media Results";
    0x4400 rw "Sanitize";
    0x4401 rw "Secure Erase";
    0x4500 ro "Get Security State";
    0x4501 rw "Set Passphrase";
    0x4502 rw "Disable Passphrase";
    0x4503 rw "Unlock";
    0x4504 rw "Freeze Security State";
    0x4505 rw "Passphrase Secure Erase";
    0x4800 ro "Get Dynamic Capacity Configuration";
    0x4801 ro "Get Dynamic Capacity Extent List";
    0x4802 rw "Add Dynamic Capacity Response";
    0x4803 rw "Release Dynamic Capacity";
    0x5100 ro "Identify Switch Device";
    0x5101 ro "Get Physical Port State";
    0x5102 rw "Physical Port Control";
    0x5103 rw "Send PPB CXL.io Configuration Request";
    0x5200 ro "Get Virtual CXL Switch Info";
    0x5201 rw "Bind vPPB";
    0x5202 rw "Unbind vPPB";
    0x5203 rw "Generate AER Event";
    0x5300 rw "Tunnel Management Command";
    0x5301 rw "Send LD CXL.io Configuration Request";
    0x5302 rw "Send LD CXL.io Memory Request";
    0x5400 ro "Get LD Info";
    0x5401 ro "Get LD Allocations";
    0x5402 rw "Set LD Allocations";
    0x5403 ro "Get QoS Control";
    0x5404 rw "Set QoS Control";
    0x5405 ro "Get QoS Status";
    0x5406 ro "Get QoS Allocated BW";
    0x5407 rw "Set QoS Allocated BW";
    0x5408 ro "Get QoS BW Limit";
    0x5409 rw "Set QoS BW Limit";
    0x5500 ro "Get Multi-Headed Info";
    0x5501 ro "Get Head Info";
    0x5600 ro "Get DCD Info";
    0x5601 ro "Get Host DC Region Configuration";
    0x5602 rw "Set DC Region Configuration";
    0x5603 ro "Get DC Region Extent Lists";
    0x5604 rw "Initiate Dynamic Capacity Add";
    0x5605 rw "Initiate Dynamic Capacity Release";
}

/// Looks an opcode up in [`OPCODES`].
pub fn info(opcode: u16) -> Option<&'static OpcodeInfo> {
    OPCODES
        .binary_search_by_key(&opcode, |i| i.opcode)
        .ok()
        .and_then(|i| OPCODES.get(i))
}

/// The name of an opcode, if known.
pub fn name(opcode: u16) -> Option<&'static str> {
    info(opcode).map(|i| i.name)
}

/// Whether the specification defines `opcode` as read-only. Vendor-specific opcodes never are.
pub fn spec_read_only(opcode: u16) -> bool {
    !is_vendor_specific(opcode) && info(opcode).is_some_and(|i| i.read_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in OPCODES.windows(2) {
            if let [a, b] = pair {
                assert!(
                    a.opcode < b.opcode,
                    "{:04x} before {:04x}",
                    a.opcode,
                    b.opcode
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(name(IDENTIFY_SWITCH), Some("Identify Switch Device"));
        assert!(spec_read_only(GET_LOG));
        assert!(!spec_read_only(BIND_VPPB));
        assert!(!spec_read_only(TUNNEL));
        assert!(!spec_read_only(0xc000));
        assert_eq!(name(0xc001), None);
        assert!(is_vendor_specific(0xc000));
        assert!(is_vendor_specific(0xffff));
        assert!(!is_vendor_specific(0xbfff));
    }

    #[test]
    fn pooling_commands() {
        // Reading the DCD and the MLD changes nothing; configuring, adding, releasing and
        // allocating change the fabric (CXL r3.1 §7.6.7.4, §7.6.7.6).
        for (op, n) in [
            (GET_LD_INFO, "Get LD Info"),
            (GET_LD_ALLOCATIONS, "Get LD Allocations"),
            (GET_DCD_INFO, "Get DCD Info"),
            (
                GET_HOST_DC_REGION_CONFIG,
                "Get Host DC Region Configuration",
            ),
            (GET_DC_REGION_EXTENT_LISTS, "Get DC Region Extent Lists"),
        ] {
            assert_eq!(name(op), Some(n));
            assert!(spec_read_only(op), "{op:04x}");
        }
        for (op, n) in [
            (SET_LD_ALLOCATIONS, "Set LD Allocations"),
            (SET_DC_REGION_CONFIG, "Set DC Region Configuration"),
            (INITIATE_DC_ADD, "Initiate Dynamic Capacity Add"),
            (INITIATE_DC_RELEASE, "Initiate Dynamic Capacity Release"),
            (ADD_DC_RESPONSE, "Add Dynamic Capacity Response"),
            (RELEASE_DC, "Release Dynamic Capacity"),
        ] {
            assert_eq!(name(op), Some(n));
            assert!(!spec_read_only(op), "{op:04x}");
        }
    }
}
