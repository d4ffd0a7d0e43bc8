/* Process metrics every Prometheus user expects, and the build. */
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "render.h"
#include "ztunnel/version.h"

static double start_time;

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own descriptor */
}

static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

void tm_process_started(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	start_time = (double)now.tv_sec + now.tv_nsec / 1e9;
}

void tm_render_process(struct tm_text *out)
{
	struct rusage ru;
	struct rlimit nofile;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		tm_family_header(out, "process_cpu_seconds_total", "counter", "User and system CPU time.");
		tm_text_printf(out, "process_cpu_seconds_total %.3f\n",
			       (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
				       ru.ru_stime.tv_usec / 1e6);
	}
	tm_family_header(out, "process_resident_memory_bytes", "gauge", "Resident memory.");
	tm_text_printf(out, "process_resident_memory_bytes %ld\n", rss_bytes());
	tm_family_header(out, "process_open_fds", "gauge", "Open file descriptors.");
	tm_text_printf(out, "process_open_fds %ld\n", open_fds());
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		tm_family_header(out, "process_max_fds", "gauge", "Descriptor limit.");
		tm_text_printf(out, "process_max_fds %llu\n", (unsigned long long)nofile.rlim_cur);
	}
	tm_family_header(out, "process_start_time_seconds", "gauge", "Start time since the epoch.");
	tm_text_printf(out, "process_start_time_seconds %.3f\n", start_time);
	tm_family_header(out, "istio_build", "gauge", "Build information.");
	tm_text_printf(out, "istio_build{component=\"ztunnel\",tag=\"%s\"} 1\n", ZTUNNEL_VERSION);
}
