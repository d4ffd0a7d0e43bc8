/* The handover socket's protocol: one request ("take"), one answer (how
 * many listeners per direction, the descriptors in SCM_RIGHTS). */
#include "ztunnel/handover.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAGIC "ZTHANDV1"
#define MAGIC_SERVING "ZTSERVE1"

struct msg {
	char magic[8];
	uint32_t n[PROXY_DIRECTIONS];
};

void handover_fds_close(struct handover_fds *f)
{
	for (int d = 0; d < PROXY_DIRECTIONS; d++) {
		for (int i = 0; i < f->n[d]; i++)
			close(f->fd[d][i]);
		f->n[d] = 0;
	}
}

void handover_path(const struct zt_config *cfg, char *out, size_t size)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", cfg->cni_socket);
	snprintf(out, size, "%s/handover.sock", dirname(dir));
}

static int addr_of(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

int handover_listen(const char *path)
{
	struct sockaddr_un a;
	int r = addr_of(path, &a);

	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* the agent we took over from, or one that died */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int handover_accept(int listen_fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return -errno;
	/* Root can take our sockets anyway; nobody else may ask. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int handover_wait_take(int conn)
{
	struct msg m;
	ssize_t n = recv(conn, &m, sizeof(m), MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	if (n != sizeof(m) || memcmp(m.magic, MAGIC, 8))
		return -EPROTO; /* also 0 bytes: the successor went away */
	return 0;
}

int handover_give(int conn, const struct handover_fds *fds)
{
	struct msg m = { MAGIC, { 0 } };
	int all[PROXY_DIRECTIONS * HANDOVER_MAX_PER_DIRECTION], k = 0;
	for (int d = 0; d < PROXY_DIRECTIONS; d++) {
		m.n[d] = (uint32_t)fds->n[d];
		for (int i = 0; i < fds->n[d]; i++)
			all[k++] = fds->fd[d][i];
	}
	char control[CMSG_SPACE(sizeof(all))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k) };
	memset(control, 0, sizeof(control));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
	memcpy(CMSG_DATA(c), all, sizeof(int) * (size_t)k);
	return sendmsg(conn, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -errno;
}

int handover_serving(int conn)
{
	struct msg m = { MAGIC_SERVING, { 0 } };

	return send(conn, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m) ? 0 : -errno;
}

int handover_wait_serving(int conn)
{
	struct msg m;
	ssize_t n = recv(conn, &m, sizeof(m), MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	return n == sizeof(m) && !memcmp(m.magic, MAGIC_SERVING, 8) ? 0 : -EPIPE;
}

int handover_connect(const char *path)
{
	struct sockaddr_un a;
	int r = addr_of(path, &a);

	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int handover_take(int conn, struct handover_fds *out)
{
	struct msg m = { MAGIC, { 0 } };
	int all[PROXY_DIRECTIONS * HANDOVER_MAX_PER_DIRECTION];
	char control[CMSG_SPACE(sizeof(all))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct pollfd p = { conn, POLLIN, 0 };

	memset(out, 0, sizeof(*out));
	if (send(conn, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		return -errno;
	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	int k = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(all, CMSG_DATA(c), sizeof(int) * (size_t)k);
	}
	uint32_t want = 0;
	for (int d = 0; d < PROXY_DIRECTIONS; d++)
		want += m.n[d] <= HANDOVER_MAX_PER_DIRECTION ? m.n[d] : UINT32_MAX / 4;
	if (n != sizeof(m) || memcmp(m.magic, MAGIC, 8) || (mh.msg_flags & MSG_CTRUNC) || want != (uint32_t)k) {
		for (int i = 0; i < k; i++)
			close(all[i]);
		return -EPROTO;
	}
	k = 0;
	for (int d = 0; d < PROXY_DIRECTIONS; d++) {
		out->n[d] = (int)m.n[d];
		for (int i = 0; i < out->n[d]; i++)
			out->fd[d][i] = all[k++];
	}
	return 0;
}
