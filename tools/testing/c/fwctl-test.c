// SPDX-License-Identifier: GPL-2.0
/*
 * A fwctl client for the fwctl devices of cxl_swcci, built against the kernel's sanitized
 * uapi headers <fwctl/fwctl.h> and <fwctl/cxl.h> (make headers_install; tools/build.sh) and
 * the driver's <linux/cxl_swcci.h>, whose struct swcci_info is the FWCTL_INFO device data.
 *
 *   swcci-fwctl-test [--no-rawio] info FWCTL_DEV
 *   swcci-fwctl-test [--no-rawio] rpc FWCTL_DEV SCOPE OPCODE [INPUT_HEX [OUT_ROOM]]
 *   swcci-fwctl-test [--no-rawio] hold FWCTL_DEV
 *   swcci-fwctl-test [--no-rawio] check FWCTL_DEV
 *
 * --no-rawio   drop CAP_SYS_RAWIO before opening the device
 * info         FWCTL_INFO; prints "key value" lines (device_type, data_len, version, kind,
 *              flags, payload_size, serial, pci_addr, node)
 * rpc          one FWCTL_RPC with struct fwctl_rpc_cxl at scope SCOPE (0-3), OPCODE (hex)
 *              and the input bytes INPUT_HEX ("-" or absent: none), with OUT_ROOM bytes of
 *              output room after the 8-byte struct fwctl_rpc_cxl_out header (default: the
 *              payload size); prints "errno 0 retval R size N out_len L payload HEX" or
 *              "errno E"
 * hold         opens the device and runs Identify (0001h) at FWCTL_RPC_CONFIGURATION, prints
 *              "ready"; then, for each line read on stdin, runs Identify and FWCTL_INFO again
 *              and prints "rpc errno E info errno E"; at end of input closes the file and
 *              prints "closed". Lets a test unbind the device while the file is open.
 * check        malformed requests are refused with the errnos Documentation/fwctl.rst
 *              lists; prints "ok - ..." / "not ok - ..." and exits 1 if any check failed.
 *
 * Exit status: 0 when the mode ran (rpc: whatever the errno), 1 on a failed check, 2 on a
 * usage or set-up error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <fwctl/fwctl.h>
#include <fwctl/cxl.h>
#include "linux/cxl_swcci.h"

#define RPC_HDR sizeof(struct fwctl_rpc_cxl_hdr)
#define OUT_HDR sizeof(struct fwctl_rpc_cxl_out_hdr)

static int failures;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	if (!ok)
		failures++;
}

static void drop_rawio(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		die("capget");
	data[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective &= ~CAP_TO_MASK(CAP_SYS_RAWIO);
	data[CAP_TO_INDEX(CAP_SYS_RAWIO)].permitted &= ~CAP_TO_MASK(CAP_SYS_RAWIO);
	if (syscall(SYS_capset, &hdr, data))
		die("capset");
}

/* FWCTL_INFO with @len bytes of room for the device data; returns 0 or -errno. */
static int fwctl_info(int fd, struct fwctl_info *info, void *data, uint32_t len)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->device_data_len = len;
	info->out_device_data = (uintptr_t)data;
	return ioctl(fd, FWCTL_INFO, info) ? -errno : 0;
}

/*
 * FWCTL_RPC of @in (@in_len bytes) with @out_len bytes of output at @out; returns 0 or
 * -errno, and the response length in *@resp_len.
 */
static int fwctl_rpc(int fd, uint32_t scope, const void *in, uint32_t in_len, void *out,
		     uint32_t out_len, uint32_t *resp_len)
{
	struct fwctl_rpc rpc = {
		.size = sizeof(rpc),
		.scope = scope,
		.in_len = in_len,
		.out_len = out_len,
		.in = (uintptr_t)in,
		.out = (uintptr_t)out,
	};

	if (ioctl(fd, FWCTL_RPC, &rpc))
		return -errno;
	if (resp_len)
		*resp_len = rpc.out_len;
	return 0;
}

/* A struct fwctl_rpc_cxl request for @opcode carrying @len bytes of @payload (NULL: zeroes). */
static struct fwctl_rpc_cxl *request(uint32_t opcode, const void *payload, size_t len,
				     size_t *in_len)
{
	size_t size = RPC_HDR + len + 1;
	struct fwctl_rpc_cxl *req;

	/* At least the whole structure (its union), one spare byte after the input. */
	req = calloc(1, size > sizeof(*req) ? size : sizeof(*req));

	if (!req)
		die("calloc");
	req->opcode = opcode;
	req->op_size = len;
	if (payload && len) /* else: zeroes */
		memcpy((char *)req + RPC_HDR, payload, len);
	*in_len = RPC_HDR + len;
	return req;
}

static int open_dev(const char *path)
{
	int fd = open(path, O_RDWR);

	if (fd < 0)
		die(path);
	return fd;
}

static uint32_t payload_size(int fd)
{
	struct swcci_info si;
	struct fwctl_info info;

	if (fwctl_info(fd, &info, &si, sizeof(si)))
		die("FWCTL_INFO");
	return si.payload_size;
}

static int do_info(int fd)
{
	struct swcci_info si;
	struct fwctl_info info;
	int rc = fwctl_info(fd, &info, &si, sizeof(si));

	if (rc) {
		printf("errno %d\n", -rc);
		return 0;
	}
	printf("device_type %u\n", info.out_device_type);
	printf("data_len %u\n", info.device_data_len);
	printf("version 0x%x\n", si.version);
	printf("kind %u\n", si.kind);
	printf("flags 0x%x\n", si.flags);
	printf("payload_size %u\n", si.payload_size);
	printf("serial 0x%llx\n", (unsigned long long)si.serial);
	printf("pci_addr %.*s\n", (int)sizeof(si.pci_addr), si.pci_addr);
	printf("node %.*s\n", (int)sizeof(si.node), si.node);
	return 0;
}

static size_t parse_hex(const char *hex, uint8_t **out)
{
	size_t n = strcmp(hex, "-") ? strlen(hex) / 2 : 0, i;
	uint8_t *b = calloc(1, n + 1);

	if (!b || (strcmp(hex, "-") && strlen(hex) % 2))
		die("input hex");
	for (i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			die("input hex");
		b[i] = v;
	}
	*out = b;
	return n;
}

static int do_rpc(int fd, int argc, char **argv)
{
	uint32_t scope = strtoul(argv[0], NULL, 0), opcode = strtoul(argv[1], NULL, 16);
	uint32_t room = argc > 3 ? strtoul(argv[3], NULL, 0) : payload_size(fd), resp_len = 0;
	uint8_t *input = NULL;
	size_t len = parse_hex(argc > 2 ? argv[2] : "-", &input), in_len, i;
	struct fwctl_rpc_cxl *req = request(opcode, input, len, &in_len);
	struct fwctl_rpc_cxl_out *out = calloc(1, OUT_HDR + room);
	int rc;

	if (!out)
		die("calloc");
	rc = fwctl_rpc(fd, scope, req, in_len, out, OUT_HDR + room, &resp_len);
	if (rc) {
		printf("errno %d\n", -rc);
		return 0;
	}
	printf("errno 0 retval 0x%x size %u out_len %u payload ", out->retval, out->size,
	       resp_len);
	for (i = 0; i < out->size && i < room; i++)
		printf("%02x", out->payload[i]);
	printf("\n");
	free(req);
	free(out);
	free(input);
	return 0;
}

/* Identify at FWCTL_RPC_CONFIGURATION; returns 0 or -errno. */
static int identify(int fd, struct fwctl_rpc_cxl_out *out, uint32_t room)
{
	size_t in_len;
	struct fwctl_rpc_cxl *req = request(0x0001, NULL, 0, &in_len);
	int rc = fwctl_rpc(fd, FWCTL_RPC_CONFIGURATION, req, in_len, out, OUT_HDR + room, NULL);

	free(req);
	return rc;
}

static int do_hold(int fd)
{
	struct fwctl_rpc_cxl_out *out = calloc(1, OUT_HDR + 64);
	struct swcci_info si;
	struct fwctl_info info;
	char line[64];
	int rc;

	if (!out)
		die("calloc");
	rc = identify(fd, out, 64);
	if (rc || out->retval || out->size != 18) {
		printf("identify errno %d retval %u size %u\n", -rc, out->retval, out->size);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int r = identify(fd, out, 64);
		int i = fwctl_info(fd, &info, &si, sizeof(si));

		printf("rpc errno %d info errno %d\n", -r, -i);
		fflush(stdout);
	}
	if (close(fd))
		die("close");
	printf("closed\n");
	free(out);
	return 0;
}

/* One malformed request: FWCTL_RPC must fail with @want. */
static void expect_rpc_errno(int fd, uint32_t scope, const void *in, uint32_t in_len,
			     uint32_t out_len, int want, const char *what)
{
	static uint8_t out[4096];
	char msg[160];
	int rc;

	if (out_len > sizeof(out))
		die("out_len");
	rc = fwctl_rpc(fd, scope, in, in_len, out, out_len, NULL);
	snprintf(msg, sizeof(msg), "%s: %s (got %s)", what, strerror(want),
		 rc ? strerror(-rc) : "success");
	check(rc == -want, msg);
}

static int do_check(int fd)
{
	uint32_t payload = payload_size(fd);
	size_t in_len, big_len;
	struct fwctl_rpc_cxl *req = request(0x0001, NULL, 0, &in_len);
	struct fwctl_rpc_cxl *big = request(0x0001, NULL, payload + 1, &big_len);
	struct fwctl_rpc_cxl_out *out = calloc(1, OUT_HDR + payload);
	struct swcci_info si;
	struct fwctl_info info;
	uint32_t resp_len = 0;
	uint64_t serial;
	int rc;

	if (!out)
		die("calloc");

	/* FWCTL_INFO: the type, and struct swcci_info with the room the caller gives. */
	rc = fwctl_info(fd, &info, &si, sizeof(si));
	check(!rc && info.out_device_type == FWCTL_DEVICE_TYPE_CXL,
	      "FWCTL_INFO: FWCTL_DEVICE_TYPE_CXL");
	check(!rc && info.device_data_len == sizeof(si) && si.version == SWCCI_VERSION &&
		      si.kind == SWCCI_KIND_SWITCH_CCI && (si.flags & SWCCI_INFO_IDENTIFIED),
	      "FWCTL_INFO: struct swcci_info of an identified switch CCI");
	serial = si.serial;
	memset(&si, 0xa5, sizeof(si));
	rc = fwctl_info(fd, &info, &si, 8);
	check(!rc && info.device_data_len == sizeof(si) && si.version == SWCCI_VERSION &&
		      ((uint8_t *)&si)[8] == 0xa5,
	      "FWCTL_INFO: 8 bytes of room get 8 bytes and the full length");
	info.flags = 1;
	check(ioctl(fd, FWCTL_INFO, &info) && errno == EOPNOTSUPP,
	      "FWCTL_INFO: flags set: EOPNOTSUPP (fwctl core)");

	/* Identify at the lowest scope, with room to spare, exact, and short. */
	rc = fwctl_rpc(fd, FWCTL_RPC_CONFIGURATION, req, in_len, out, OUT_HDR + payload,
		       &resp_len);
	check(!rc && out->retval == 0 && out->size == 18 && resp_len == OUT_HDR + 18 &&
		      !memcmp(out->payload + 8, &serial, 8),
	      "Identify at FWCTL_RPC_CONFIGURATION: 18 bytes, the serial of FWCTL_INFO");
	rc = fwctl_rpc(fd, FWCTL_RPC_CONFIGURATION, req, in_len, out, OUT_HDR + 18, &resp_len);
	check(!rc && out->size == 18 && resp_len == OUT_HDR + 18, "Identify, exact room");
	rc = fwctl_rpc(fd, FWCTL_RPC_CONFIGURATION, req, in_len, out, OUT_HDR + 4, &resp_len);
	check(!rc && out->retval == 0 && out->size == 4 && resp_len == OUT_HDR + 4,
	      "Identify, 4 bytes of room: 4 bytes (truncated as on the device node)");
	rc = fwctl_rpc(fd, FWCTL_RPC_CONFIGURATION, req, in_len + 1, out, OUT_HDR + 18, NULL);
	check(!rc && out->size == 18, "bytes after the input payload are ignored");

	/* The header of struct fwctl_rpc_cxl. */
	expect_rpc_errno(fd, 0, req, RPC_HDR - 4, OUT_HDR + 64, EINVAL, "in_len below the header");
	req->op_size = 1;
	expect_rpc_errno(fd, 0, req, in_len, OUT_HDR + 64, EINVAL, "op_size past in_len");
	req->op_size = 0;
	req->flags = 1;
	expect_rpc_errno(fd, 0, req, in_len, OUT_HDR + 64, EINVAL, "flags set");
	req->flags = 0;
	req->reserved1 = 1;
	expect_rpc_errno(fd, 0, req, in_len, OUT_HDR + 64, EINVAL, "reserved1 set");
	req->reserved1 = 0;
	req->opcode = 0x10001;
	expect_rpc_errno(fd, 0, req, in_len, OUT_HDR + 64, EINVAL, "opcode above 16 bits");
	req->opcode = 0x0001;

	/* Sizes against the mailbox payload, and the output header. */
	expect_rpc_errno(fd, 0, big, big_len, OUT_HDR + 64, EINVAL,
			 "op_size above the payload size");
	expect_rpc_errno(fd, 0, req, in_len, OUT_HDR - 1, EINVAL,
			 "out_len below struct fwctl_rpc_cxl_out");
	{
		uint8_t *huge = calloc(1, OUT_HDR + payload + 1);
		struct fwctl_rpc rpc = {
			.size = sizeof(rpc),
			.in_len = in_len,
			.out_len = OUT_HDR + payload + 1,
			.in = (uintptr_t)req,
			.out = (uintptr_t)huge,
		};

		if (!huge)
			die("calloc");
		check(ioctl(fd, FWCTL_RPC, &rpc) && errno == EINVAL,
		      "output room above the payload size: EINVAL");
		free(huge);
	}

	/* What the fwctl core refuses itself. */
	expect_rpc_errno(fd, 4, req, in_len, OUT_HDR + 64, EOPNOTSUPP, "scope 4 (fwctl core)");
	{
		struct fwctl_rpc rpc = {
			.size = sizeof(rpc),
			.in_len = (2 << 20) + 1,
			.out_len = OUT_HDR + 64,
			.in = (uintptr_t)req,
			.out = (uintptr_t)out,
		};

		check(ioctl(fd, FWCTL_RPC, &rpc) && errno == EMSGSIZE,
		      "in_len above 2 MiB: EMSGSIZE (fwctl core)");
	}

	free(req);
	free(big);
	free(out);
	return failures ? 1 : 0;
}

/* The layout of the CXL RPC structures in this kernel's uapi header, one "name value" line
 * each, for the suite to compare with the Rust mirror (swcci_proto::uapi::FwctlRpcCxl). */
static int do_layout(void)
{
	printf("sizeof fwctl_rpc_cxl %zu\n", sizeof(struct fwctl_rpc_cxl_hdr));
	printf("offsetof fwctl_rpc_cxl.opcode %zu\n", offsetof(struct fwctl_rpc_cxl, opcode));
	printf("offsetof fwctl_rpc_cxl.flags %zu\n", offsetof(struct fwctl_rpc_cxl, flags));
	printf("offsetof fwctl_rpc_cxl.op_size %zu\n", offsetof(struct fwctl_rpc_cxl, op_size));
	printf("offsetof fwctl_rpc_cxl.reserved1 %zu\n",
	       offsetof(struct fwctl_rpc_cxl, reserved1));
	printf("sizeof fwctl_rpc_cxl_out %zu\n", offsetof(struct fwctl_rpc_cxl_out, payload));
	printf("offsetof fwctl_rpc_cxl_out.size %zu\n", offsetof(struct fwctl_rpc_cxl_out, size));
	printf("offsetof fwctl_rpc_cxl_out.retval %zu\n",
	       offsetof(struct fwctl_rpc_cxl_out, retval));
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: swcci-fwctl-test [--no-rawio] info|rpc|hold|check FWCTL_DEV "
			"[SCOPE OPCODE [INPUT_HEX [OUT_ROOM]]]\n"
			"       swcci-fwctl-test layout\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	argv++;
	argc--;
	if (argc && !strcmp(argv[0], "--no-rawio")) {
		drop_rawio();
		argv++;
		argc--;
	}
	if (argc == 1 && !strcmp(argv[0], "layout"))
		return do_layout();
	if (argc < 2)
		usage();
	mode = argv[0];
	fd = open_dev(argv[1]);
	if (!strcmp(mode, "info") && argc == 2)
		return do_info(fd);
	if (!strcmp(mode, "rpc") && argc >= 4 && argc <= 6)
		return do_rpc(fd, argc - 2, argv + 2);
	if (!strcmp(mode, "hold") && argc == 2)
		return do_hold(fd);
	if (!strcmp(mode, "check") && argc == 2)
		return do_check(fd);
	usage();
	return 2;
}
