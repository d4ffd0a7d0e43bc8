/* Internal to ztunnel/proxy: a relayed connection and its worker. */
#ifndef ZTUNNEL_PROXY_CONN_H
#define ZTUNNEL_PROXY_CONN_H

#include <linux/time_types.h>
#include <netinet/in.h>
#include <pthread.h>

#include "ztunnel/loop.h"
#include "ztunnel/proxy.h"

#define RELAY_BUF (64 * 1024)
#define CONNECT_TIMEOUT_S 10

struct proxy;
struct worker;

/* One direction of the relay: bytes read from `from`, written to `to`. */
struct half {
	struct op recv_op, send_op, shut_op;
	struct conn *conn;
	int from, to;
	uint32_t len, off;
	bool in_recv, in_send, eof, write_closed;
	uint64_t bytes;
	char *buf;
};

struct conn {
	struct worker *w;
	struct conn *next_free;
	uint8_t dir; /* enum proxy_direction */
	int cfd, ufd;
	struct sockaddr_in src, dst, up;
	struct op connect_op, timeout_op;
	struct __kernel_timespec timeout;
	struct half h[2]; /* [0] client -> upstream, [1] upstream -> client */
	int pending;      /* operations in flight */
	bool aborting, connected;
	const char *error;
	int64_t start_ms;
	char src_name[160], dst_name[160], service[160];
	char bufs[2][RELAY_BUF];
};

/* A listener's multishot accept; op first so a CQE maps back to it. */
struct accept_slot {
	struct op op;
	struct worker *w;
	uint8_t dir;
};

struct worker {
	struct proxy *p;
	struct loop loop;
	pthread_t thread;
	int id;
	int lfd[PROXY_DIRECTIONS];
	struct accept_slot accept[PROXY_DIRECTIONS];
	struct conn *free_list;
	uint32_t n_free;
	unsigned seed;
};

struct proxy {
	const struct zt_config *cfg;
	struct state_store *store;
	struct capture *capture;
	struct proxy_stats stats;
	struct worker *workers;
	int n_workers;
};

/* Takes an accepted client socket through routing, connect and relay. */
void conn_start(struct worker *w, uint8_t dir, int cfd);

#endif
