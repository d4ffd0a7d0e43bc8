/* Prometheus text exposition (format 0.0.4) parsed into samples: a pure
 * function of the text, no I/O, so it can be fed anything. */
#ifndef ZTUNNEL_CTL_PROM_H
#define ZTUNNEL_CTL_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "ztunnel/arena.h"

struct prom_label {
	const char *name, *value; /* value unescaped */
};

struct prom_sample {
	const char *name;
	const struct prom_label *labels; /* sorted by name */
	uint32_t n_labels;
	/* name{labels sorted}: the same series in two scrapes has the same key. */
	const char *key;
	double value;
};

/* A zeroed one is an empty scrape, and may be released. */
struct prom_scrape {
	struct prom_sample *samples;
	size_t n, cap;
	struct arena arena; /* every string and label array */
};

/* Parses text (len bytes, need not be NUL-terminated) into *out, which the
 * caller releases in every case. 0; -EINVAL with "line N: why" in err for
 * text that is not the exposition format (no partial result is meant to be
 * used: an audit must not count half a scrape); -ENOMEM. */
int prom_parse(const char *text, size_t len, struct prom_scrape *out, char *err, size_t err_size);
void prom_scrape_release(struct prom_scrape *s);

/* The value of label name, NULL when the sample has none. */
const char *prom_label(const struct prom_sample *s, const char *name);

/* For counters: later becomes the increase since earlier, series by
 * series. A series absent from earlier keeps its value, and so does one
 * that went down (the agent restarted: its counters began again at 0). */
int prom_delta(struct prom_scrape *later, const struct prom_scrape *earlier);

#endif
