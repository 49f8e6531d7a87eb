// SPDX-License-Identifier: GPL-2.0
/*
 * The cxl_swcci ABI from C, the way the existing fabric-management tools use it.
 *
 * libcxlmi (cxlmi_open(ctx, "switch0")) and cxl-fmapi-tests open /dev/cxl/switchN,
 * build a CCI message (12-byte header + payload) and send only its payload with
 * CXL_MEM_SEND_COMMAND, id CXL_MEM_COMMAND_ID_RAW, opcode = set << 8 | command;
 * a non-zero retval is the CXL return code; tunnels are raw 5300h commands
 * wrapping a CCI message. This program does exactly that against the system's
 * <linux/cxl_mem.h>, plus the driver's own info ioctl from its C header.
 *
 *   swcci-abi-test NODE SWITCH_SERIAL TYPE3_PORT TYPE3_SERIAL EMPTY_PORT
 *
 * Prints one line per check ("ok - ..." / "not ok - ...") and exits 0 when all pass.
 * Built twice on x86_64: 64-bit and -m32 (compat ioctls).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/cxl_mem.h>
#include "linux/cxl_swcci.h"

/* The CCI message as libcxlmi declares it (CXL r3.1 Figure 7-19). */
struct cci_msg {
	uint8_t category;
	uint8_t tag;
	uint8_t rsv1;
	uint8_t command;
	uint8_t command_set;
	uint8_t pl_length[3];
	uint16_t return_code;
	uint16_t vendor_ext_status;
	uint8_t payload[];
} __attribute__((packed));

struct tunnel_req {
	uint8_t port_or_ld_id;
	uint8_t target_type;
	uint16_t size;
	struct cci_msg message[];
} __attribute__((packed));

struct tunnel_rsp {
	uint16_t length;
	uint16_t resv;
	struct cci_msg message[];
} __attribute__((packed));

struct identify_rsp {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint64_t serial;
	uint8_t max_msg;
	uint8_t component_type;
} __attribute__((packed));

static int failures;

static void check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	if (!ok)
		failures++;
}

/* libcxlmi's send_ioctl_direct(): the payload of @req goes in, the payload of @rsp comes out. */
static int send_cci(int fd, struct cci_msg *req, size_t req_sz, struct cci_msg *rsp,
		    size_t rsp_sz, uint32_t *out_size)
{
	struct cxl_send_command cmd = {
		.id = CXL_MEM_COMMAND_ID_RAW,
		.raw.opcode = req->command | (req->command_set << 8),
		.in.size = req_sz - sizeof(*req),
		.in.payload = (__u64)(uintptr_t)req->payload,
		.out.size = rsp_sz - sizeof(*rsp),
		.out.payload = (__u64)(uintptr_t)rsp->payload,
	};

	if (ioctl(fd, CXL_MEM_SEND_COMMAND, &cmd) < 0)
		return -errno;
	if (out_size)
		*out_size = cmd.out.size;
	return cmd.retval;
}

static struct cci_msg *cci_request(uint8_t set, uint8_t cmd, size_t payload)
{
	struct cci_msg *m = calloc(1, sizeof(*m) + payload);

	if (!m)
		exit(2);
	m->command_set = set;
	m->command = cmd;
	m->pl_length[0] = payload & 0xff;
	m->pl_length[1] = (payload >> 8) & 0xff;
	m->pl_length[2] = (payload >> 16) & 0x1f;
	return m;
}

/*
 * Identify through one tunnel (path_len 1) or two (path_len 2), as libcxlmi's
 * send_ioctl_tunnel1/2 build them. Returns the inner return code or -errno.
 */
static int tunnel_identify(int fd, const uint8_t *path, int path_len, struct identify_rsp *id)
{
	size_t inner_sz = sizeof(struct cci_msg);
	struct cci_msg *msg = cci_request(0x00, 0x01, 0);
	size_t rsp_sz = 2048 + sizeof(struct cci_msg);
	struct cci_msg *rsp = calloc(1, rsp_sz);
	uint32_t out_size = 0;
	const uint8_t *body;
	int level, rc;

	if (!rsp)
		exit(2);
	/* Wrap from the inside out: each level is a 5300h request carrying the previous. */
	for (level = path_len - 1; level >= 0; level--) {
		size_t t_sz = sizeof(struct tunnel_req) + inner_sz;
		struct cci_msg *outer = cci_request(0x53, 0x00, t_sz);
		struct tunnel_req *t = (struct tunnel_req *)outer->payload;

		t->port_or_ld_id = path[level];
		t->target_type = 0;
		t->size = inner_sz;
		memcpy(t->message, msg, inner_sz);
		free(msg);
		msg = outer;
		inner_sz = sizeof(struct cci_msg) + t_sz;
	}
	rc = send_cci(fd, msg, inner_sz, rsp, rsp_sz, &out_size);
	free(msg);
	if (rc) {
		free(rsp);
		return rc;
	}
	body = rsp->payload;
	for (level = 0; level < path_len; level++) {
		const struct tunnel_rsp *t = (const struct tunnel_rsp *)body;

		if (t->message->return_code) {
			rc = t->message->return_code;
			break;
		}
		body = t->message->payload;
	}
	if (!rc)
		memcpy(id, body, sizeof(*id));
	free(rsp);
	return rc;
}

int main(int argc, char **argv)
{
	struct cci_msg *req, *rsp;
	struct identify_rsp id;
	struct swcci_info info;
	uint64_t sw_serial, t3_serial;
	uint8_t t3_port, empty, path[2];
	uint32_t out_size = 0;
	char node[64];
	int fd, rc;

	if (argc != 6) {
		fprintf(stderr, "usage: %s NODE SWITCH_SERIAL TYPE3_PORT TYPE3_SERIAL EMPTY_PORT\n", argv[0]);
		return 2;
	}
	sw_serial = strtoull(argv[2], NULL, 0);
	t3_port = strtoul(argv[3], NULL, 0);
	t3_serial = strtoull(argv[4], NULL, 0);
	empty = strtoul(argv[5], NULL, 0);
	printf("# %zu-bit process, struct cxl_send_command is %zu bytes\n",
	       sizeof(void *) * 8, sizeof(struct cxl_send_command));

	/* cxlmi_open(ctx, "switch0") */
	snprintf(node, sizeof(node), "/dev/cxl/%s", argv[1]);
	fd = open(node, O_RDWR);
	if (fd < 0) {
		perror(node);
		return 1;
	}

	/* Identify (0001h): the whole response, retval 0. */
	req = cci_request(0x00, 0x01, 0);
	rsp = calloc(1, sizeof(*rsp) + sizeof(id));
	rc = send_cci(fd, req, sizeof(*req), rsp, sizeof(*rsp) + sizeof(id), &out_size);
	memcpy(&id, rsp->payload, sizeof(id));
	check(rc == 0 && out_size == sizeof(id), "Identify: retval 0, 18 bytes");
	check(id.serial == sw_serial && id.component_type == 0, "Identify: switch serial, component type 0");
	free(req);
	free(rsp);

	/* Identify Switch Device (5100h). */
	req = cci_request(0x51, 0x00, 0);
	rsp = calloc(1, sizeof(*rsp) + 0x49);
	rc = send_cci(fd, req, sizeof(*req), rsp, sizeof(*rsp) + 0x49, &out_size);
	check(rc == 0 && out_size == 0x49, "Identify Switch Device: retval 0, 73 bytes");
	check(rsp->payload[3] == 1, "Identify Switch Device: one VCS");
	free(req);
	free(rsp);

	/* Get Physical Port State (5101h) of an invalid port: retval 02h. */
	req = cci_request(0x51, 0x01, 2);
	req->payload[0] = 1;
	req->payload[1] = 200;
	rsp = calloc(1, sizeof(*rsp) + 64);
	rc = send_cci(fd, req, sizeof(*req) + 2, rsp, sizeof(*rsp) + 64, NULL);
	check(rc == 2, "Get Physical Port State of port 200: retval 02h (invalid input)");
	free(req);
	free(rsp);

	/* Tunnels, one and two levels, and to an empty port. */
	path[0] = t3_port;
	path[1] = 0;
	rc = tunnel_identify(fd, path, 1, &id);
	check(rc == 0 && id.serial == t3_serial && id.component_type == 3,
	      "tunnel Identify: type-3 serial, component type 3");
	rc = tunnel_identify(fd, path, 2, &id);
	check(rc == 0 && id.serial == t3_serial && id.component_type == 3,
	      "two-level tunnel Identify: type-3 serial, component type 3");
	path[0] = empty;
	rc = tunnel_identify(fd, path, 1, &id);
	check(rc == 2, "tunnel to an empty port: retval 02h");

	/* The errors a tool can meet. */
	{
		struct cxl_send_command cmd = { .id = CXL_MEM_COMMAND_ID_RAW, .raw.opcode = 1 };
		struct cxl_mem_query_commands q = { .n_commands = 0 };

		cmd.id = 0;
		check(ioctl(fd, CXL_MEM_SEND_COMMAND, &cmd) < 0 && errno == ENOTTY, "id 0: ENOTTY");
		cmd.id = CXL_MEM_COMMAND_ID_RAW;
		cmd.in.size = 4096;
		check(ioctl(fd, CXL_MEM_SEND_COMMAND, &cmd) < 0 && errno == EINVAL, "in.size 4096: EINVAL");
		cmd.in.size = 0;
		cmd.raw.rsvd = 1;
		check(ioctl(fd, CXL_MEM_SEND_COMMAND, &cmd) < 0 && errno == EINVAL, "raw.rsvd: EINVAL");
		check(ioctl(fd, CXL_MEM_QUERY_COMMANDS, &q) == 0 && q.n_commands == 1, "QUERY count: 1");
	}

	/* The driver's own ioctl, from its C header. */
	memset(&info, 0, sizeof(info));
	rc = ioctl(fd, SWCCI_IOCTL_INFO, &info);
	check(rc == 0 && info.version == SWCCI_VERSION && info.kind == SWCCI_KIND_SWITCH_CCI &&
		      info.serial == sw_serial && info.payload_size == 2048,
	      "SWCCI_IOCTL_INFO: version, kind, serial, payload size");
	check(strcmp(info.node + 4, argv[1]) == 0, "SWCCI_IOCTL_INFO: node name");
	printf("# %s is %s, PCI %04x:%04x\n", info.node, info.pci_addr, info.pci_vendor, info.pci_device);

	close(fd);
	printf("# %d failures\n", failures);
	return failures ? 1 : 0;
}
