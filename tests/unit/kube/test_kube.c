/* The sans-IO parts of the Kubernetes source: the object store keyed by
 * namespace/name, the watch stream split anywhere by reads, and what the
 * redirection annotation of a pod needs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../ztunnel/kube/annotate.h"
#include "ztunnel/state.h"

static cJSON *pod(const char *ns, const char *name, const char *ip)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"managedFields\":[{\"big\":1}]},"
		 "\"status\":{\"podIP\":\"%s\"}}",
		 ns, name, ip);
	return cJSON_Parse(text);
}

static const char *ip_of(const struct kube_objects *o, const char *ns, const char *name)
{
	cJSON *arr = cJSON_CreateArray(), *it;
	static char found[64];

	found[0] = '\0';
	kube_objects_refs(o, arr);
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *md = cJSON_GetObjectItem(it, "metadata");
		if (!strcmp(cJSON_GetObjectItem(md, "namespace")->valuestring, ns) &&
		    !strcmp(cJSON_GetObjectItem(md, "name")->valuestring, name))
			snprintf(found, sizeof(found), "%s",
				 cJSON_GetObjectItem(cJSON_GetObjectItem(it, "status"), "podIP")->valuestring);
	}
	cJSON_Delete(arr);
	return found;
}

static void objects_replace_delete_and_survive_many(void **state)
{
	struct kube_objects o = { 0 };
	char name[32], ip[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		assert_int_equal(kube_objects_put(&o, pod(i % 2 ? "a" : "b", name, ip)), 0);
	}
	assert_int_equal(o.n, 5000);
	/* The same name in another namespace is another object; a MODIFIED
	 * replaces. */
	assert_int_equal(kube_objects_put(&o, pod("a", "p2", "10.9.9.9")), 0);
	assert_int_equal(o.n, 5001);
	assert_int_equal(kube_objects_put(&o, pod("a", "p1", "10.8.8.8")), 0);
	assert_int_equal(o.n, 5001);
	assert_string_equal(ip_of(&o, "a", "p1"), "10.8.8.8");
	/* Deleting every other one keeps the rest reachable (probe runs). */
	for (int i = 0; i < 5000; i += 2) {
		snprintf(name, sizeof(name), "p%d", i);
		cJSON *key = pod("b", name, "");
		assert_int_equal(kube_objects_del(&o, key), 0);
		assert_int_equal(kube_objects_del(&o, key), -ENOENT);
		cJSON_Delete(key);
	}
	assert_int_equal(o.n, 2501);
	assert_string_equal(ip_of(&o, "a", "p4999"), "10.0.19.249");
	assert_string_equal(ip_of(&o, "a", "p2"), "10.9.9.9");
	assert_string_equal(ip_of(&o, "b", "p10"), "");
	/* managedFields never kept. */
	cJSON *arr = cJSON_CreateArray();
	kube_objects_refs(&o, arr);
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "metadata"), "managedFields"));
	cJSON_Delete(arr);
	kube_objects_clear(&o);
	assert_int_equal(o.n, 0);
}

struct seen {
	char types[16][16];
	int n;
};

static int record(const char *type, cJSON *ev, void *ctx)
{
	struct seen *s = ctx;

	(void)ev;
	if (s->n < 16)
		snprintf(s->types[s->n++], sizeof(s->types[0]), "%s", type);
	return 0;
}

static void stream_reassembles_events_split_anywhere(void **state)
{
	const char *events = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
			     "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\r\n"
			     "\n"
			     "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n";
	size_t n = strlen(events);

	(void)state;
	/* Every split point, and byte by byte. */
	for (size_t cut = 0; cut <= n; cut++) {
		struct kube_stream st = { 0 };
		struct seen s = { 0 };
		assert_int_equal(kube_stream_feed(&st, events, cut, record, &s), 0);
		assert_int_equal(kube_stream_feed(&st, events + cut, n - cut, record, &s), 0);
		assert_int_equal(s.n, 3);
		assert_string_equal(s.types[0], "ADDED");
		assert_string_equal(s.types[1], "BOOKMARK");
		assert_string_equal(s.types[2], "DELETED");
		kube_stream_reset(&st);
	}
	struct kube_stream st = { 0 };
	struct seen s = { 0 };
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kube_stream_feed(&st, events + i, 1, record, &s), 0);
	assert_int_equal(s.n, 3);
	kube_stream_reset(&st);
}

static void stream_refuses_what_is_not_an_event(void **state)
{
	struct kube_stream st = { 0 };
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(kube_stream_feed(&st, "not json\n", 9, record, &s), -EPROTO);
	kube_stream_reset(&st);
	assert_int_equal(kube_stream_feed(&st, "{\"type\":\"ADDED\"}\n", 17, record, &s), -EPROTO);
	kube_stream_reset(&st);
	/* An event larger than the cap never grows the buffer without bound. */
	char *big = malloc(1 << 20);
	memset(big, ' ', 1 << 20);
	int r = 0;
	for (int i = 0; i < 20 && r == 0; i++)
		r = kube_stream_feed(&st, big, 1 << 20, record, &s);
	assert_int_equal(r, -EFBIG);
	free(big);
	kube_stream_reset(&st);
	assert_int_equal(s.n, 0);
}

static cJSON *node_pod(const char *uid, const char *node, const char *redirection)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"p-%s\",\"uid\":\"%s\"%s%s%s},"
		 "\"spec\":{\"nodeName\":\"%s\"}}",
		 uid, uid, redirection ? ",\"annotations\":{\"ambient.istio.io/redirection\":\"" : "",
		 redirection ? redirection : "", redirection ? "\"}" : "", node);
	return cJSON_Parse(text);
}

/* Only this node's pods are touched; captured ones get "enabled", the
 * others lose it; an owner's "disabled" stays; a report of none clears. */
static void annotation_follows_capture_on_this_node_only(void **state)
{
	(void)state;
	char *captured[] = { "u1", "u3" };
	struct {
		const char *uid, *node, *value;
		enum annotate_op want;
	} cases[] = {
		{ "u1", "n1", NULL, ANNOTATE_SET },
		{ "u1", "n1", "enabled", ANNOTATE_KEEP },
		{ "u1", "n1", "disabled", ANNOTATE_KEEP },
		{ "u1", "n1", "pending", ANNOTATE_SET },
		{ "u2", "n1", "enabled", ANNOTATE_CLEAR },
		{ "u2", "n1", NULL, ANNOTATE_KEEP },
		{ "u2", "n1", "disabled", ANNOTATE_KEEP },
		{ "u3", "n2", NULL, ANNOTATE_KEEP },    /* captured here? not our pod */
		{ "u4", "n2", "enabled", ANNOTATE_KEEP }, /* another node's word */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *p = node_pod(cases[i].uid, cases[i].node, cases[i].value);
		assert_non_null(p);
		assert_int_equal(annotate_needed(p, "n1", captured, 2), cases[i].want);
		cJSON_Delete(p);
	}
	cJSON *p = node_pod("u1", "n1", "enabled");
	assert_int_equal(annotate_needed(p, "n1", NULL, 0), ANNOTATE_CLEAR);
	cJSON_Delete(p);
	p = cJSON_Parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{\"nodeName\":\"n1\"}}");
	assert_int_equal(annotate_needed(p, "n1", captured, 2), ANNOTATE_KEEP); /* no uid: no precondition */
	cJSON_Delete(p);
}

static void annotation_patch_carries_the_uid_precondition(void **state)
{
	(void)state;
	char *set = annotate_patch("u-1", ANNOTATE_SET), *clear = annotate_patch("u-1", ANNOTATE_CLEAR);
	assert_string_equal(set, "{\"metadata\":{\"uid\":\"u-1\",\"annotations\":{\"" ZT_ANNOTATION_REDIRECTION
				 "\":\"enabled\"}}}");
	assert_string_equal(clear, "{\"metadata\":{\"uid\":\"u-1\",\"annotations\":{\"" ZT_ANNOTATION_REDIRECTION
				   "\":null}}}");
	free(set);
	free(clear);
}

/* Reported after every model: an unchanged wish (in any order) costs no
 * look at the cluster's pods; a new one, or a pause, does. */
static void an_unchanged_report_is_not_a_change(void **state)
{
	(void)state;
	struct kube_annotator a;
	const char *ab[] = { "a", "b" }, *ba[] = { "b", "a" }, *only_a[] = { "a" };

	assert_int_equal(annotator_init(&a, "n1"), 0);
	assert_int_equal(annotator_report(&a, ab, 2), 0);
	assert_true(a.changed && a.active);
	a.changed = false;
	assert_int_equal(annotator_report(&a, ba, 2), 0);
	assert_false(a.changed);
	assert_int_equal(annotator_report(&a, only_a, 1), 0);
	assert_true(a.changed);
	a.changed = false;
	assert_int_equal(annotator_report(&a, NULL, 0), 0);
	assert_true(a.changed);
	assert_false(a.active);
	annotator_fini(&a, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(objects_replace_delete_and_survive_many),
		cmocka_unit_test(stream_reassembles_events_split_anywhere),
		cmocka_unit_test(stream_refuses_what_is_not_an_event),
		cmocka_unit_test(annotation_follows_capture_on_this_node_only),
		cmocka_unit_test(annotation_patch_carries_the_uid_precondition),
		cmocka_unit_test(an_unchanged_report_is_not_a_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
