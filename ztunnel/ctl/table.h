/* Aligned text tables (the human output of ztunnel-ctl), one row per
 * element of a cJSON array or member of an object. */
#ifndef ZTUNNEL_CTL_TABLE_H
#define ZTUNNEL_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

struct table_column {
	const char *header;
	/* The row's member shown as table_value shows it, or NULL and: */
	const char *key;
	/* the cell written by this (row: an element; an object's member has
	 * its name in row->string). */
	void (*cell)(const cJSON *row, FILE *out);
};

/* Header and rows, columns three spaces apart, every line after indent
 * spaces: 0, or -ENOMEM. */
int table_print(const cJSON *rows, const struct table_column *cols, size_t n_cols, int indent, FILE *out);

/* A value as a cell: strings as they are, whole numbers without decimals,
 * booleans yes/no, arrays comma-separated, objects as key:value,...;
 * absent, null, empty or "" as "-". */
void table_value(const cJSON *v, FILE *out);

#endif
