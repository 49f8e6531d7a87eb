// SPDX-License-Identifier: GPL-2.0
/*
 * An event daemon's loop over several cxl_swcci nodes, in C, as Documentation/events.rst
 * shows it: one epoll set, EPOLLPRI per node; on EPOLLPRI the node's event logs are read
 * with Get Event Records (0100h) and what was read is cleared with Clear Event Records
 * (0101h), log by log, until no log reports more; EPOLLHUP (the switch was unbound or
 * removed) drops the node from the set. No timers: the driver signals events by interrupt,
 * or by its own check of the Event Status register when the interrupt is missing.
 *
 *   swcci-event-loop [--max-records N] NODE...
 *
 * Besides <linux/cxl_mem.h> it uses the driver's <linux/cxl_swcci.h> for the payload size.
 *
 * Prints "NODE log L handle H type UUID" per record, "NODE gone" at EPOLLHUP, and "ready"
 * once every node is in the set and its logs were drained (records logged before start are
 * printed first). Ends with status 0 when every node is gone or N records were printed, 1 when
 * a command failed (the node, the command and the errno or return code on stderr), 2 on a
 * usage error. The in-guest test events_c_daemon_loop runs it (tools/ktest/src/tests/poll.rs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/cxl_mem.h>
#include "linux/cxl_swcci.h"

#define GET_EVENT_RECORDS 0x0100
#define CLEAR_EVENT_RECORDS 0x0101
#define EVENT_LOGS 4          /* informational, warning, failure, fatal (CXL r3.1 §8.2.9.2.2) */
#define RECORD_SIZE 128       /* one event record (§8.2.9.2.1) */
#define GET_HEADER 0x20       /* the Get Event Records output before its records */
#define MORE_RECORDS (1 << 1) /* Get Event Records flags: more records than this output holds */
#define MAX_NODES 16

static long max_records = -1;
static long printed;

/* One raw command: 0 on success, else -1 with a message naming the node and the command. */
static int send_raw(int fd, const char *node, uint16_t opcode, const void *in, uint32_t in_size,
		    void *out, uint32_t *out_size)
{
	struct cxl_send_command cmd = {
		.id = CXL_MEM_COMMAND_ID_RAW,
		.raw.opcode = opcode,
		.in.size = in_size,
		.in.payload = (uintptr_t)in,
		.out.size = *out_size,
		.out.payload = (uintptr_t)out,
	};

	if (ioctl(fd, CXL_MEM_SEND_COMMAND, &cmd) < 0) {
		fprintf(stderr, "%s: command %04xh: %s\n", node, opcode, strerror(errno));
		return -1;
	}
	if (cmd.retval) {
		fprintf(stderr, "%s: command %04xh: return code %02xh\n", node, opcode, cmd.retval);
		return -1;
	}
	*out_size = cmd.out.size;
	return 0;
}

/*
 * Reads and clears every record of every log of one node, printing each. The output room of
 * a command is at most the node's payload size (SWCCI_IOCTL_INFO), else EINVAL.
 */
static int drain(int fd, const char *node)
{
	static uint8_t out[GET_HEADER + 16 * RECORD_SIZE];
	struct swcci_info info;
	uint32_t room = sizeof(out);
	uint8_t log;

	if (ioctl(fd, SWCCI_IOCTL_INFO, &info) < 0)
		return fprintf(stderr, "%s: SWCCI_IOCTL_INFO: %s\n", node, strerror(errno)), -1;
	if (info.payload_size < room)
		room = info.payload_size;

	for (log = 0; log < EVENT_LOGS; log++) {
		for (;;) {
			uint32_t size = room;
			uint8_t clear[6 + 2 * 16] = { log };
			uint16_t n, i;

			if (send_raw(fd, node, GET_EVENT_RECORDS, &log, 1, out, &size))
				return -1;
			if (size < GET_HEADER)
				return fprintf(stderr, "%s: Get Event Records: %u bytes\n", node, size), -1;
			n = out[0x14] | out[0x15] << 8;
			if (n == 0)
				break;
			if (n > 16 || size < GET_HEADER + (uint32_t)n * RECORD_SIZE)
				return fprintf(stderr, "%s: Get Event Records: %u records in %u bytes\n",
					       node, n, size), -1;
			/* Clear Event Records: log, flags, count, 3 reserved bytes, handles. */
			clear[2] = n;
			for (i = 0; i < n; i++) {
				const uint8_t *r = out + GET_HEADER + i * RECORD_SIZE;

				printf("%s log %u handle %u type %02x%02x%02x%02x-%02x%02x-%02x%02x-"
				       "%02x%02x-%02x%02x%02x%02x%02x%02x\n",
				       node, log, r[0x14] | r[0x15] << 8, r[0], r[1], r[2], r[3], r[4],
				       r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
				       r[15]);
				clear[6 + 2 * i] = r[0x14];
				clear[7 + 2 * i] = r[0x15];
				printed++;
			}
			fflush(stdout);
			size = 0;
			if (send_raw(fd, node, CLEAR_EVENT_RECORDS, clear, 6 + 2 * n, NULL, &size))
				return -1;
			if (max_records >= 0 && printed >= max_records)
				return 0;
			if (!(out[1] & MORE_RECORDS))
				break;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fds[MAX_NODES], nodes = 0, live = 0, ep, i;

	if (argc > 2 && !strcmp(argv[1], "--max-records")) {
		max_records = strtol(argv[2], NULL, 0);
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || argc - 1 > MAX_NODES) {
		fprintf(stderr, "usage: swcci-event-loop [--max-records N] NODE... (at most %d)\n",
			MAX_NODES);
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return perror("epoll_create1"), 1;
	for (i = 1; i < argc; i++) {
		/* EPOLLHUP and EPOLLERR are always reported; EPOLLPRI is asked for. */
		struct epoll_event ev = { .events = EPOLLPRI, .data.u32 = nodes };
		int fd = open(argv[i], O_RDWR | O_CLOEXEC);

		if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			return fprintf(stderr, "%s: %s\n", argv[i], strerror(errno)), 1;
		fds[nodes++] = fd;
		live++;
		/* What was logged before this file polled is read once now. */
		if (drain(fd, argv[i]))
			return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (live > 0 && (max_records < 0 || printed < max_records)) {
		struct epoll_event evs[MAX_NODES];
		int n = epoll_wait(ep, evs, MAX_NODES, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return perror("epoll_wait"), 1;
		for (i = 0; i < n; i++) {
			int k = evs[i].data.u32;

			if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
				printf("%s gone\n", argv[k + 1]);
				fflush(stdout);
				epoll_ctl(ep, EPOLL_CTL_DEL, fds[k], NULL);
				close(fds[k]);
				live--;
			} else if (evs[i].events & EPOLLPRI && drain(fds[k], argv[k + 1])) {
				return 1;
			}
		}
	}
	return 0;
}
