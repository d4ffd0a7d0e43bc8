/* Socket setup for the data path: transparent listeners and upstreams. */
#include "ztunnel/proxy.h"
#include "ztunnel/redirect.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* IP_TRANSPARENT lets the listener take packets bpf_sk_assign hands it for
 * any destination; getsockname() of an accepted socket is then the
 * original destination. reuseport: one per worker, in one group. */
int proxy_listen_transparent(uint16_t port, bool reuseport)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	if ((r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0 ||
	    (reuseport && (r = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0) ||
	    (r = set_int(fd, SOL_IP, IP_TRANSPARENT, 1)) < 0 ||
	    (r = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

/* An accepted socket's peer and original destination (its local address:
 * the listeners are transparent); -EAFNOSUPPORT unless IPv4. */
int proxy_socket_addrs(int fd, struct sockaddr_in *peer, struct sockaddr_in *local)
{
	if (getpeername(fd, (struct sockaddr *)peer, &(socklen_t){ sizeof(*peer) }) < 0 ||
	    getsockname(fd, (struct sockaddr *)local, &(socklen_t){ sizeof(*local) }) < 0)
		return -errno;
	return peer->sin_family == AF_INET ? 0 : -EAFNOSUPPORT;
}

/* Upstream leg with the client pod's address as source (bind_ip), port
 * chosen by the kernel: reusing the client's port would collide in
 * conntrack (DESIGN.md §1). */
int proxy_upstream_socket(uint32_t bind_ip)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	if ((r = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0 ||
	    (r = set_int(fd, SOL_SOCKET, SO_MARK, ZT_AGENT_MARK)) < 0)
		goto fail;
	if (bind_ip) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = bind_ip };
		if ((r = set_int(fd, SOL_IP, IP_TRANSPARENT, 1)) < 0 ||
		    (r = set_int(fd, SOL_IP, IP_FREEBIND, 1)) < 0 ||
		    (r = set_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)) < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			r = -errno;
			goto fail;
		}
	}
	return fd;
fail:
	close(fd);
	return r;
}
