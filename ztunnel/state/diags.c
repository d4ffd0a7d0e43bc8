#include "ztunnel/state.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = { "warning", "invalid", "error" };

const char *diag_level_name(enum zt_diag_level level)
{
	return level <= ZT_DIAG_ERROR ? level_names[level] : "?";
}

void diags_init(struct zt_diags *d)
{
	memset(d, 0, sizeof(*d));
	arena_init(&d->arena);
}

void diags_release(struct zt_diags *d)
{
	free(d->items);
	arena_release(&d->arena);
	memset(d, 0, sizeof(*d));
}

void diags_add(struct zt_diags *d, enum zt_diag_level level, const char *object,
	       const char *field, const char *fmt, ...)
{
	va_list ap;
	char reason[512];

	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		struct zt_diag *items = realloc(d->items, cap * sizeof(*items));
		if (!items)
			return; /* counted below anyway: an error still rejects */
		d->items = items;
		d->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (level == ZT_DIAG_ERROR)
		d->n_errors++;
	else if (level == ZT_DIAG_INVALID)
		d->n_invalid++;
	else
		d->n_warnings++;
	if (d->n == d->cap)
		return;
	const char *o = arena_strdup(&d->arena, object ? object : "");
	const char *f = arena_strdup(&d->arena, field ? field : "");
	const char *r = arena_strdup(&d->arena, reason);
	d->items[d->n++] = (struct zt_diag){ (uint8_t)level, o ? o : "", f ? f : "", r ? r : "" };
}

void diags_print(const struct zt_diags *d, FILE *out)
{
	for (uint32_t i = 0; i < d->n; i++) {
		const struct zt_diag *g = &d->items[i];

		fprintf(out, "%s: ", diag_level_name(g->level));
		if (*g->object)
			fprintf(out, "%s: ", g->object);
		if (*g->field)
			fprintf(out, "%s: ", g->field);
		fprintf(out, "%s\n", g->reason);
	}
}
