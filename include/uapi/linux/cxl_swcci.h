/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cxl_swcci: userspace ABI of the CXL switch mailbox CCI / PCIe MMB driver.
 *
 * The device nodes /dev/cxl/switchN speak the ioctls of <linux/cxl_mem.h>
 * (CXL_MEM_SEND_COMMAND with CXL_MEM_COMMAND_ID_RAW, CXL_MEM_QUERY_COMMANDS)
 * and the ioctls below. Every structure has the same layout for 32- and
 * 64-bit processes. See Documentation/abi.rst.
 *
 * The Rust mirror of these definitions is rust/src/uapi.rs; a test checks
 * that sizes, offsets and ioctl numbers agree.
 */
#ifndef _UAPI_LINUX_CXL_SWCCI_H
#define _UAPI_LINUX_CXL_SWCCI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define SWCCI_IOC_TYPE 0xCE /* shared with <linux/cxl_mem.h>, numbers from 0xA0 */

/* struct swcci_info.version: major << 16 | minor << 8 | patch */
#define SWCCI_VERSION 0x00010000

/* struct swcci_info.kind */
#define SWCCI_KIND_SWITCH_CCI 1 /* CXL switch mailbox CCI, /dev/cxl/switchN */
#define SWCCI_KIND_MMB 2        /* any other function with a PCIe MMB (with or without MMPT) */
#define SWCCI_KIND_MMPT SWCCI_KIND_MMB /* the old name of SWCCI_KIND_MMB */

/* struct swcci_info.flags */
#define SWCCI_INFO_IRQ (1 << 0)        /* doorbell completion by interrupt (else polled) */
#define SWCCI_INFO_BG_IRQ (1 << 1)     /* background completion by interrupt */
#define SWCCI_INFO_MMB (1 << 2)        /* found as a PCIe MMB (MRBL -> MCAP) */
#define SWCCI_INFO_MMPT (1 << 3)       /* the function has MMPT registers */
#define SWCCI_INFO_CXL (1 << 4)        /* CXL mailbox extensions (background commands) */
#define SWCCI_INFO_IDENTIFIED (1 << 5) /* identity fields below are valid */

/**
 * struct swcci_info - what SWCCI_IOCTL_INFO returns
 * @version: SWCCI_VERSION of the driver
 * @kind: SWCCI_KIND_*
 * @flags: SWCCI_INFO_*
 * @payload_size: mailbox payload size in bytes
 * @cel_entries: entries of the Command Effects Log read at probe
 * @pci_vendor: PCI vendor id of the function
 * @pci_device: PCI device id of the function
 * @vendor_id: Identify: vendor id
 * @device_id: Identify: device id
 * @subsys_vendor_id: Identify: subsystem vendor id
 * @subsys_id: Identify: subsystem id
 * @serial: Identify: serial number
 * @max_msg_size_log2: Identify: largest message, log2 of bytes
 * @component_type: Identify: 0 switch, 3 type-3 device
 * @rsvd0: reserved, zero
 * @pci_addr: PCI address "DDDD:BB:DD.F", NUL-terminated
 * @node: node name below /dev, e.g. "cxl/switch0", NUL-terminated
 * @rsvd1: reserved, zero
 */
struct swcci_info {
	__u32 version;
	__u32 kind;
	__u32 flags;
	__u32 payload_size;
	__u32 cel_entries;
	__u16 pci_vendor;
	__u16 pci_device;
	__u16 vendor_id;
	__u16 device_id;
	__u16 subsys_vendor_id;
	__u16 subsys_id;
	__u64 serial;
	__u8 max_msg_size_log2;
	__u8 component_type;
	__u8 rsvd0[6];
	char pci_addr[32];
	char node[32];
	__u64 rsvd1[4];
};

#define SWCCI_IOCTL_INFO _IOR(SWCCI_IOC_TYPE, 0xA0, struct swcci_info)

/* struct swcci_bg_policy.flags */
#define SWCCI_BG_ABORT_ON_TIMEOUT (1 << 0) /* send 0005h when the wait times out */
#define SWCCI_BG_ABORT_ON_SIGNAL (1 << 1)  /* send 0005h when the caller is killed */
#define SWCCI_BG_ASYNC (1 << 2)            /* return at once; poll, then SWCCI_IOCTL_BG_RESULT */
#define SWCCI_BG_TIMEOUT_MIN_MS 1
#define SWCCI_BG_TIMEOUT_MAX_MS 600000

/**
 * struct swcci_bg_policy - how raw background commands of one open file are waited for
 * @timeout_ms: longest wait for completion (SWCCI_BG_TIMEOUT_MIN_MS..MAX_MS); 0 keeps
 *              the current value
 * @flags: SWCCI_BG_*
 *
 * SWCCI_IOCTL_BG_POLICY sets the policy and returns the one in effect. Defaults:
 * the module parameter bg_timeout_ms (60000) and SWCCI_BG_ABORT_ON_TIMEOUT.
 */
struct swcci_bg_policy {
	__u32 timeout_ms;
	__u32 flags;
};

#define SWCCI_IOCTL_BG_POLICY _IOWR(SWCCI_IOC_TYPE, 0xA1, struct swcci_bg_policy)

/* struct swcci_bg_result.state */
#define SWCCI_BG_STATE_NONE 0     /* the file holds no asynchronous operation */
#define SWCCI_BG_STATE_RUNNING 1  /* still running: @percent is its progress */
#define SWCCI_BG_STATE_DONE 2     /* completed: @retval, @vendor_status (collected) */
#define SWCCI_BG_STATE_LOST 3     /* ended, result overwritten by another background command */
#define SWCCI_BG_STATE_VANISHED 4 /* vanished before completing (a function reset) */

/**
 * struct swcci_bg_result - the asynchronous background operation of one open file
 * @opcode: its opcode
 * @retval: its final return code (SWCCI_BG_STATE_DONE)
 * @vendor_status: its vendor extended status (SWCCI_BG_STATE_DONE)
 * @state: SWCCI_BG_STATE_*
 * @percent: its progress (SWCCI_BG_STATE_RUNNING)
 * @rsvd: reserved, zero
 *
 * With SWCCI_BG_ASYNC set, a raw command the device runs in the background returns at
 * once with retval 01h (background command started); poll() reports EPOLLIN on the file
 * when the operation ended, and SWCCI_IOCTL_BG_RESULT returns its outcome: an ended one is
 * collected, after which the file holds none (Documentation/abi.rst).
 */
struct swcci_bg_result {
	__u16 opcode;
	__u16 retval;
	__u16 vendor_status;
	__u8 state;
	__u8 percent;
	__u64 rsvd;
};

#define SWCCI_IOCTL_BG_RESULT _IOR(SWCCI_IOC_TYPE, 0xA2, struct swcci_bg_result)

/*
 * MMPT nodes (/dev/swcci/mmptN) and switch CCIs that have MMPT registers.
 * Message types and MMPT return codes are PROVISIONAL (Documentation/mmpt.rst).
 */
#define SWCCI_MMPT_TIMEOUT_MAX_MS 600000

/**
 * struct swcci_mmpt_msg - one management message
 * @msg_type: message type (SWCCI_MMPT_SEND: in; SWCCI_MMPT_RECV: out)
 * @rsvd0: reserved, zero
 * @timeout_ms: SWCCI_MMPT_RECV: wait at most this long for a message (0: do not wait);
 *              SWCCI_MMPT_SEND: the longest the whole transfer may take (0: 60 s); at most
 *              SWCCI_MMPT_TIMEOUT_MAX_MS, in ms
 * @len: SWCCI_MMPT_SEND: message length (at most 1 MiB); SWCCI_MMPT_RECV: in, the size
 *       of the buffer at @data; out, the length of the message
 * @retval: out: the MMPT return code of the transfer (0: success)
 * @data: user pointer to the message data
 */
struct swcci_mmpt_msg {
	__u8 msg_type;
	__u8 rsvd0[3];
	__u32 timeout_ms;
	__u32 len;
	__u32 retval;
	__u64 data;
};

#define SWCCI_MMPT_SEND _IOWR(SWCCI_IOC_TYPE, 0xB0, struct swcci_mmpt_msg)
#define SWCCI_MMPT_RECV _IOWR(SWCCI_IOC_TYPE, 0xB1, struct swcci_mmpt_msg)

/**
 * struct swcci_mmb_command - a raw MMB command with an explicit opcode vendor id
 * @opcode: opcode
 * @opcode_vendor: 0x0000 legacy CXL, 0x0001 PCI-SIG
 * @retval: out: return code
 * @vendor_status: out: vendor extended status
 * @rsvd: reserved, zero
 * @in: input payload (size, rsvd = 0, user pointer)
 * @out: output payload; size is rewritten with the bytes returned
 */
struct swcci_mmb_command {
	__u16 opcode;
	__u16 opcode_vendor;
	__u32 retval;
	__u32 vendor_status;
	__u32 rsvd;
	struct {
		__u32 size;
		__u32 rsvd;
		__u64 payload;
	} in;
	struct {
		__u32 size;
		__u32 rsvd;
		__u64 payload;
	} out;
};

#define SWCCI_MMB_SEND_COMMAND _IOWR(SWCCI_IOC_TYPE, 0xB2, struct swcci_mmb_command)

#endif /* _UAPI_LINUX_CXL_SWCCI_H */
