/* Prometheus text format 0.0.4, sample lines only:
 *   name{label="value",...} value [timestamp]
 * '#' lines (HELP, TYPE, comments) and empty lines are skipped; label
 * values escape '\\', '"' and newline ("\n"). Anything else is refused with
 * its line number rather than guessed at. */
#include "prom.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Istio's traffic metrics carry 27 labels; a line with more is refused. */
#define PROM_MAX_LABELS 64

struct cursor {
	const char *p, *end; /* the line, without its '\n' */
	struct arena *a;
	char *err;
	size_t err_size;
	unsigned line;
};

static int fail(struct cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cursor *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->err_size, "line %u: ", c->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < c->err_size)
		vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void skip_blanks(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names without ':'. */
static const char *take_name(struct cursor *c, bool colon)
{
	const char *start = c->p;

	while (c->p < c->end && (isalpha((unsigned char)*c->p) || *c->p == '_' || (colon && *c->p == ':') ||
				 (c->p > start && isdigit((unsigned char)*c->p))))
		c->p++;
	return c->p > start ? arena_printf(c->a, "%.*s", (int)(c->p - start), start) : NULL;
}

/* After the opening quote: the unescaped value up to the closing one. */
static const char *take_value(struct cursor *c)
{
	const char *close = c->p;

	/* Found first, so the copy is as long as the value, not the line. */
	while (close < c->end && *close != '"')
		close += *close == '\\' && close + 1 < c->end ? 2 : 1;
	if (close >= c->end) {
		fail(c, "label value without its closing quote");
		return NULL;
	}
	char *out = arena_alloc(c->a, (size_t)(close - c->p) + 1), *o = out;
	if (!out) {
		fail(c, "out of memory");
		return NULL;
	}
	for (; c->p < close; c->p++) {
		if (*c->p != '\\') {
			*o++ = *c->p;
			continue;
		}
		switch (*++c->p) {
		case '\\': *o++ = '\\'; break;
		case '"': *o++ = '"'; break;
		case 'n': *o++ = '\n'; break;
		default: fail(c, "unknown escape \"\\%c\" in a label value", *c->p); return NULL;
		}
	}
	c->p = close + 1;
	*o = '\0';
	return out;
}

static int take_labels(struct cursor *c, struct prom_label *labels, uint32_t *n)
{
	*n = 0;
	for (;;) {
		skip_blanks(c);
		if (c->p < c->end && *c->p == '}')
			break;
		if (*n == PROM_MAX_LABELS)
			return fail(c, "more than %d labels", PROM_MAX_LABELS);
		struct prom_label *l = &labels[(*n)++];
		if (!(l->name = take_name(c, false)))
			return fail(c, "label name expected");
		skip_blanks(c);
		if (c->p == c->end || *c->p++ != '=')
			return fail(c, "'=' expected after label %s", l->name);
		skip_blanks(c);
		if (c->p == c->end || *c->p++ != '"')
			return fail(c, "'\"' expected after %s=", l->name);
		if (!(l->value = take_value(c)))
			return -EINVAL;
		skip_blanks(c);
		if (c->p < c->end && *c->p == ',')
			c->p++;
		else if (c->p == c->end || *c->p != '}')
			return fail(c, "',' or '}' expected after label %s", l->name);
	}
	c->p++;
	return 0;
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct prom_label *)a)->name, ((const struct prom_label *)b)->name);
}

/* A float as Go's ParseFloat takes it (strtod also takes "+Inf", "NaN"). */
static int take_number(struct cursor *c, double *v)
{
	char buf[64], *end;
	const char *start = c->p;

	while (c->p < c->end && *c->p != ' ' && *c->p != '\t')
		c->p++;
	if (c->p == start || c->p - start >= (long)sizeof(buf))
		return fail(c, "value expected");
	memcpy(buf, start, (size_t)(c->p - start));
	buf[c->p - start] = '\0';
	*v = strtod(buf, &end);
	return *end ? fail(c, "\"%s\" is not a number", buf) : 0;
}

/* name{sorted labels, values escaped again}: one spelling per series. */
static const char *series_key(struct cursor *c, const char *name, const struct prom_label *l, uint32_t n)
{
	size_t size = strlen(name) + 3;

	for (uint32_t i = 0; i < n; i++)
		size += strlen(l[i].name) + 2 * strlen(l[i].value) + 4;
	char *key = arena_alloc(c->a, size), *o = key;
	if (!key)
		return NULL;
	o += sprintf(o, "%s{", name);
	for (uint32_t i = 0; i < n; i++) {
		o += sprintf(o, "%s%s=\"", i ? "," : "", l[i].name);
		for (const char *v = l[i].value; *v; v++) {
			if (*v == '\\' || *v == '"' || *v == '\n')
				*o++ = '\\';
			*o++ = *v == '\n' ? 'n' : *v;
		}
		*o++ = '"';
	}
	strcpy(o, "}");
	return key;
}

static int add_sample(struct prom_scrape *s, const struct prom_sample *sample)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct prom_sample *p = realloc(s->samples, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->samples = p;
		s->cap = cap;
	}
	s->samples[s->n++] = *sample;
	return 0;
}

static int parse_line(struct cursor *c, struct prom_scrape *s)
{
	struct prom_label labels[PROM_MAX_LABELS];
	struct prom_sample sample = { 0 };
	double ts;
	int r;

	skip_blanks(c);
	if (c->p == c->end || *c->p == '#')
		return 0;
	if (!(sample.name = take_name(c, true)))
		return fail(c, "metric name expected");
	skip_blanks(c);
	if (c->p < c->end && *c->p == '{') {
		c->p++;
		if ((r = take_labels(c, labels, &sample.n_labels)) < 0)
			return r;
	}
	skip_blanks(c);
	if ((r = take_number(c, &sample.value)) < 0)
		return r;
	skip_blanks(c);
	if (c->p < c->end && (r = take_number(c, &ts)) < 0) /* the timestamp, not needed */
		return r;
	skip_blanks(c);
	if (c->p != c->end)
		return fail(c, "unexpected text after the value");
	qsort(labels, sample.n_labels, sizeof(labels[0]), cmp_label);
	for (uint32_t i = 1; i < sample.n_labels; i++)
		if (!strcmp(labels[i - 1].name, labels[i].name))
			return fail(c, "label %s given twice", labels[i].name);
	struct prom_label *kept = arena_calloc(c->a, sample.n_labels ? sample.n_labels : 1, sizeof(*kept));
	if (!kept)
		return -ENOMEM;
	memcpy(kept, labels, sample.n_labels * sizeof(*kept));
	sample.labels = kept;
	if (!(sample.key = series_key(c, sample.name, kept, sample.n_labels)))
		return -ENOMEM;
	return add_sample(s, &sample);
}

int prom_parse(const char *text, size_t len, struct prom_scrape *out, char *err, size_t err_size)
{
	struct cursor c = { .a = &out->arena, .err = err, .err_size = err_size };
	const char *p = text, *end = text + len;
	int r = 0;

	memset(out, 0, sizeof(*out));
	arena_init(&out->arena);
	if (err_size)
		*err = '\0';
	while (p < end && r == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		c.p = p;
		c.end = nl ? nl : end;
		c.line++;
		r = parse_line(&c, out);
		p = c.end + 1;
	}
	if (r == -ENOMEM && err_size)
		snprintf(err, err_size, "out of memory");
	return r;
}

void prom_scrape_release(struct prom_scrape *s)
{
	free(s->samples);
	arena_release(&s->arena);
	memset(s, 0, sizeof(*s));
}

const char *prom_label(const struct prom_sample *s, const char *name)
{
	for (uint32_t i = 0; i < s->n_labels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return NULL;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp((*(const struct prom_sample *const *)a)->key, (*(const struct prom_sample *const *)b)->key);
}

int prom_delta(struct prom_scrape *later, const struct prom_scrape *earlier)
{
	const struct prom_sample **sorted = malloc((earlier->n ? earlier->n : 1) * sizeof(*sorted));

	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < earlier->n; i++)
		sorted[i] = &earlier->samples[i];
	qsort(sorted, earlier->n, sizeof(*sorted), cmp_key);
	for (size_t i = 0; i < later->n; i++) {
		struct prom_sample *s = &later->samples[i];
		const struct prom_sample *want = s, **found = bsearch(&want, sorted, earlier->n, sizeof(*sorted), cmp_key);
		if (found && (*found)->value <= s->value)
			s->value -= (*found)->value;
	}
	free(sorted);
	return 0;
}
