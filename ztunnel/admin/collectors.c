/* Metrics whose values live with their owner (the BPF map, the published
 * certificates, the store, readiness), read at scrape time. */
#include "admin_int.h"

#include <stdio.h>

#include "ztunnel/capture.h"
#include "ztunnel/cert_share.h"
#include "ztunnel/proxy.h"
#include "ztunnel/state.h"

static void capture_packets(struct tm_text *out, void *ctx)
{
	struct admin *a = ctx;
	uint64_t v[ZT_STAT_MAX];

	if (!a->d.capture || capture_stats_read(a->d.capture, v) < 0)
		return;
	tm_family_header(out, "ztunnel_capture_packets_total", "counter",
			 "Verdicts of the eBPF capture program (SYNs and packets it judged).");
	for (int s = 0; s < ZT_STAT_MAX; s++)
		tm_text_printf(out, "ztunnel_capture_packets_total{verdict=\"%s\"} %llu\n",
			       capture_stat_name((enum zt_stat)s), (unsigned long long)v[s]);
}

static void expiry(const struct cert_share_entry *e, void *ctx)
{
	struct tm_labels l;

	if (!e->usable)
		return;
	tm_labels_init(&l);
	tm_labels_add(&l, "identity", e->uri, true);
	tm_text_printf(ctx, "ztunnel_certificate_expiration_timestamp_seconds{%s} %lld\n", l.buf,
		       (long long)e->cert.not_after);
}

static void certificates(struct tm_text *out, void *ctx)
{
	struct admin *a = ctx;

	tm_family_header(out, "ztunnel_certificate_expiration_timestamp_seconds", "gauge",
			 "Expiry of each local identity's current certificate.");
	if (a->d.certs)
		cert_share_each(a->d.certs, expiry, out);
}

static void agent(struct tm_text *out, void *ctx)
{
	struct admin *a = ctx;
	char pending[128];

	tm_family_header(out, "ztunnel_snapshot_generation", "gauge", "Generation of the model in force.");
	tm_text_printf(out, "ztunnel_snapshot_generation %llu\n",
		       (unsigned long long)state_store_generation(a->d.store));
	tm_family_header(out, "ztunnel_snapshot_applied_timestamp_seconds", "gauge",
			 "When the model in force was applied.");
	tm_text_printf(out, "ztunnel_snapshot_applied_timestamp_seconds %lld\n",
		       (long long)state_store_applied_at(a->d.store));
	tm_family_header(out, "ztunnel_ready", "gauge", "1 when readiness answers 200.");
	tm_text_printf(out, "ztunnel_ready %d\n", admin_readiness(a, pending, sizeof(pending)) == 0);
	tm_family_header(out, "ztunnel_worker_threads", "gauge", "io_uring workers.");
	tm_text_printf(out, "ztunnel_worker_threads %d\n", proxy_workers(atomic_load(&a->proxy)));
}

void admin_collectors_register(struct admin *a)
{
	tm_collector_add(capture_packets, a);
	tm_collector_add(certificates, a);
	tm_collector_add(agent, a);
}

void admin_collectors_unregister(struct admin *a)
{
	tm_collector_del(capture_packets, a);
	tm_collector_del(certificates, a);
	tm_collector_del(agent, a);
}
