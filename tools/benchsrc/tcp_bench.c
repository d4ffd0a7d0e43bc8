/* Load generator for tools/bench hbone: the same client and server for
 * every path measured (direct, stunnel, ztunnel), so only the path differs.
 *
 *   ztunnel-bench-tcp serve PORT                 echo server (one epoll thread)
 *   ztunnel-bench-tcp rr IP PORT COUNT SIZE      COUNT round trips of SIZE bytes on one
 *                                                connection: prints "p50_us P p99_us Q"
 *   ztunnel-bench-tcp cps IP PORT SECONDS [THREADS]
 *                                                new connections (connect, 1 byte echoed,
 *                                                close) back to back on THREADS threads
 *                                                (default 8): prints "cps N"
 *   ztunnel-bench-tcp hold IP PORT COUNT RATE   COUNT connections opened at RATE a
 *                                                second, each proven end to end (1 byte
 *                                                echoed), then held: prints "open N of
 *                                                COUNT" once all were tried, holds them
 *                                                until killed; exit 1 if N < COUNT
 *   ztunnel-bench-tcp steady IP PORT SECONDS RATE
 *                                                RATE new connections a second (connect,
 *                                                1 byte echoed, close), paced, on 16
 *                                                threads; each has 5 s: prints "ok N
 *                                                failed M refused R reset S timeout T"
 *                                                and exits 1 if any failed
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/time.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One epoll thread: accepting costs no thread creation, so the server is
 * not what limits connections per second. */
static int serve(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0), ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[64];
	static char buf[65536];

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0) {
		perror("listen");
		return 1;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept(lfd, NULL, NULL);
				if (c < 0)
					continue;
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			/* blocking echo: the benchmark's messages are small */
			if (r <= 0 || send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
				close(fd);
		}
	}
}

/* timeout_s > 0: connect, send and receive give up after it (a proxy that
 * never answers fails the figure instead of hanging the bench). */
static int dial_within(const char *ip, int port, int timeout_s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = timeout_s };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (timeout_s > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static int dial(const char *ip, int port)
{
	return dial_within(ip, port, 0);
}

static int exact(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rr(const char *ip, int port, int count, size_t size)
{
	int fd = dial(ip, port);
	char *buf = calloc(1, size);
	double *lat = calloc((size_t)count, sizeof(*lat));

	for (int i = -count / 10; i < count; i++) { /* first 10%: warm-up */
		double t0 = now_us();
		if (send(fd, buf, size, MSG_NOSIGNAL) != (ssize_t)size || exact(fd, buf, size) < 0) {
			fprintf(stderr, "round trip failed\n");
			return 1;
		}
		if (i >= 0)
			lat[i] = now_us() - t0;
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp);
	printf("p50_us %.1f p99_us %.1f\n", lat[count / 2], lat[count * 99 / 100]);
	close(fd);
	return 0;
}

struct cps_arg {
	const char *ip;
	int port, id;
	double end;
	long n;
	bool failed;
};

/* Thread i on CPU i mod ncpu: the load spreads over every core rather
 * than wherever the scheduler first put the threads. */
static void pin(int i)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(n > 0 ? i % n : 0, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *cps_thread(void *p)
{
	struct cps_arg *a = p;
	char c = 'x';

	pin(a->id);
	while (now_us() < a->end) {
		int fd = dial_within(a->ip, a->port, 10);
		if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || exact(fd, &c, 1) < 0) {
			a->failed = true;
			close(fd);
			return NULL;
		}
		close(fd);
		a->n++;
	}
	return NULL;
}

static int cps(const char *ip, int port, double seconds, int threads)
{
	double start = now_us();
	struct cps_arg args[64];
	pthread_t t[64];
	long total = 0;

	if (threads < 1 || threads > 64)
		threads = 8;
	for (int i = 0; i < threads; i++) {
		args[i] = (struct cps_arg){ ip, port, i, start + seconds * 1e6, 0, false };
		pthread_create(&t[i], NULL, cps_thread, &args[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (args[i].failed) {
			fprintf(stderr, "a connection failed\n");
			return 1;
		}
		total += args[i].n;
	}
	printf("cps %.0f\n", (double)total / ((now_us() - start) / 1e6));
	return 0;
}

struct steady_arg {
	const char *ip;
	int port, id, threads;
	double start, rate, end;
	long ok, refused, reset, timeout, other;
};

/* One attempt: 0, or the errno that ended it. */
static int attempt(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0), e = 0;
	char c = 'x';

	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() too */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		e = errno;
	else if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
		e = errno;
	else if (recv(fd, &c, 1, 0) != 1)
		e = errno ? errno : ECONNABORTED;
	close(fd);
	return e;
}

static void *steady_thread(void *p)
{
	struct steady_arg *a = p;

	for (long k = a->id;; k += a->threads) {
		double due = a->start + (double)k / a->rate * 1e6;
		if (due >= a->end)
			break;
		double wait = due - now_us();
		if (wait > 0)
			usleep((useconds_t)wait);
		int e = attempt(a->ip, a->port);
		if (!e)
			a->ok++;
		else if (e == ECONNREFUSED)
			a->refused++;
		else if (e == ECONNRESET || e == EPIPE || e == ECONNABORTED)
			a->reset++;
		else if (e == EAGAIN || e == ETIMEDOUT || e == EINPROGRESS)
			a->timeout++;
		else
			a->other++;
	}
	return NULL;
}

static int steady(const char *ip, int port, double seconds, double rate)
{
	struct steady_arg args[16];
	pthread_t t[16];
	double start = now_us();
	long ok = 0, refused = 0, reset = 0, timeout = 0, other = 0;

	for (int i = 0; i < 16; i++) {
		args[i] = (struct steady_arg){ ip, port, i, 16, start, rate, start + seconds * 1e6 };
		pthread_create(&t[i], NULL, steady_thread, &args[i]);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		ok += args[i].ok;
		refused += args[i].refused;
		reset += args[i].reset;
		timeout += args[i].timeout;
		other += args[i].other;
	}
	long failed = refused + reset + timeout + other;
	printf("ok %ld failed %ld refused %ld reset %ld timeout %ld\n", ok, failed, refused, reset, timeout);
	return failed ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int hold(const char *ip, int port, int count, double rate)
{
	double start = now_us();
	int open = 0;

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	for (int i = 0; i < count && !stop; i++) {
		double wait = start + i / rate * 1e6 - now_us();
		if (wait > 0)
			usleep((useconds_t)wait);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		struct timeval tv = { 5, 0 };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char c = 'x';
		inet_pton(AF_INET, ip, &a.sin_addr);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && send(fd, &c, 1, MSG_NOSIGNAL) == 1 &&
		    recv(fd, &c, 1, 0) == 1)
			open++;
		else if (fd >= 0)
			close(fd); /* the rest stay open: held */
	}
	printf("open %d of %d\n", open, count);
	fflush(stdout);
	while (!stop)
		pause();
	return open == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	/* Thousands of held connections: as many descriptors as allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "rr"))
		return rr(argv[2], atoi(argv[3]), atoi(argv[4]), (size_t)atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "steady"))
		return steady(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "hold"))
		return hold(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "cps"))
		return cps(argv[2], atoi(argv[3]), atof(argv[4]), argc == 6 ? atoi(argv[5]) : 8);
	fprintf(stderr, "usage: see the comment at the top of tcp_bench.c\n");
	return 2;
}
