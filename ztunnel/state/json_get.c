/* cJSON accessors and shared diagnostics plumbing for the snapshot parsers. */
#include "build.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *json_obj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *json_arr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsArray(v) ? v : NULL;
}

void *build_calloc(struct build *b, size_t n, size_t size)
{
	void *p = arena_calloc(b->a, n, size);

	if (!p)
		b->oom = true;
	return p;
}

const char *build_strdup(struct build *b, const char *s)
{
	char *p = s ? arena_strdup(b->a, s) : NULL;

	if (s && !p)
		b->oom = true;
	return p;
}

const char *build_object_name(struct build *b, const cJSON *item)
{
	const cJSON *md = json_obj(item, "metadata");
	const char *kind = json_str(item, "kind"), *ns = json_str(md, "namespace");
	const char *name = json_str(md, "name");
	char *s = ns ? arena_printf(&b->diags->arena, "%s %s/%s", kind ? kind : "?", ns,
				    name ? name : "?")
		     : arena_printf(&b->diags->arena, "%s %s", kind ? kind : "?", name ? name : "?");
	return s ? s : "?";
}

static void build_vdiag(struct build *b, enum zt_diag_level level, const char *object,
			const char *field, const char *fmt, va_list ap)
{
	char reason[512];

	vsnprintf(reason, sizeof(reason), fmt, ap);
	diags_add(b->diags, level, object, field, "%s", reason);
}

/* Objects are named here, not up front: most have no finding. */
void build_error(struct build *b, const cJSON *object, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	build_vdiag(b, ZT_DIAG_ERROR, object ? build_object_name(b, object) : "", field, fmt, ap);
	va_end(ap);
}

void build_error_named(struct build *b, const char *object, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	build_vdiag(b, ZT_DIAG_ERROR, object ? object : "", field, fmt, ap);
	va_end(ap);
}

void build_warn(struct build *b, const cJSON *object, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	build_vdiag(b, ZT_DIAG_WARNING, object ? build_object_name(b, object) : "", field, fmt, ap);
	va_end(ap);
}

static int label_cmp(const void *x, const void *y)
{
	return strcmp(((const struct zt_label *)x)->key, ((const struct zt_label *)y)->key);
}

bool json_labels(struct build *b, const cJSON *map, const cJSON *object, const char *field,
		 struct zt_labels *out)
{
	const cJSON *it;
	uint32_t n = 0;

	*out = (struct zt_labels){ 0 };
	if (!map)
		return true;
	if (!cJSON_IsObject(map)) {
		build_error(b, object, field, "must be a map of strings");
		return false;
	}
	cJSON_ArrayForEach(it, map) n++;
	if (!n)
		return true;
	struct zt_label *items = build_calloc(b, n, sizeof(*items));
	if (!items)
		return false;
	n = 0;
	cJSON_ArrayForEach(it, map) {
		if (!cJSON_IsString(it)) {
			build_error(b, object, field, "value of \"%s\" must be a string", it->string);
			return false;
		}
		items[n].key = build_strdup(b, it->string);
		items[n].value = build_strdup(b, it->valuestring);
		n++;
	}
	qsort(items, n, sizeof(*items), label_cmp);
	*out = (struct zt_labels){ items, n };
	return true;
}

int64_t json_timestamp(const cJSON *metadata)
{
	const char *ts = json_str(metadata, "creationTimestamp");
	struct tm tm = { 0 };

	if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}
