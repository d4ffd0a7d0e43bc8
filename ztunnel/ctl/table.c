/* Text tables: every cell is rendered first (open_memstream, so a long
 * list is never cut), then the columns are as wide as their widest cell. */
#include "table.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void table_value(const cJSON *v, FILE *out)
{
	const cJSON *c;
	bool first = true;

	if (cJSON_IsString(v)) {
		fputs(*v->valuestring ? v->valuestring : "-", out);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			fprintf(out, "%.0f", d);
		else
			fprintf(out, "%g", d);
	} else if (cJSON_IsBool(v)) {
		fputs(cJSON_IsTrue(v) ? "yes" : "no", out);
	} else if ((cJSON_IsArray(v) || cJSON_IsObject(v)) && cJSON_GetArraySize(v)) {
		cJSON_ArrayForEach(c, v) {
			if (!first)
				fputc(',', out);
			if (c->string)
				fprintf(out, "%s:", c->string);
			table_value(c, out);
			first = false;
		}
	} else {
		fputc('-', out);
	}
}

static char *render_cell(const cJSON *row, const struct table_column *col)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (col->cell)
		col->cell(row, f);
	else
		table_value(cJSON_GetObjectItemCaseSensitive(row, col->key), f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	if (!len) {
		free(text);
		return strdup("-");
	}
	/* A newline in a value would break the row apart. */
	for (char *p = text; (p = strpbrk(p, "\n\t"));)
		*p = ' ';
	return text;
}

static void print_row(char *const *cells, const size_t *width, size_t n_cols, int indent, FILE *out)
{
	fprintf(out, "%*s", indent, "");
	for (size_t c = 0; c < n_cols; c++) {
		if (c + 1 < n_cols)
			fprintf(out, "%-*s   ", (int)width[c], cells[c]);
		else
			fprintf(out, "%s\n", cells[c]);
	}
}

int table_print(const cJSON *rows, const struct table_column *cols, size_t n_cols, int indent, FILE *out)
{
	size_t n_rows = (size_t)cJSON_GetArraySize(rows), n = (n_rows + 1) * n_cols, i = 0;
	char **cells = calloc(n, sizeof(*cells));
	size_t *width = calloc(n_cols, sizeof(*width));
	const cJSON *row;
	int r = 0;

	if (!cells || !width) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < n_cols; c++)
		if (!(cells[i++] = strdup(cols[c].header)))
			r = -ENOMEM;
	cJSON_ArrayForEach(row, rows) {
		for (size_t c = 0; c < n_cols; c++)
			if (!(cells[i++] = render_cell(row, &cols[c])))
				r = -ENOMEM;
	}
	if (r < 0)
		goto out;
	for (i = 0; i < n; i++) {
		size_t l = strlen(cells[i]);
		if (l > width[i % n_cols])
			width[i % n_cols] = l;
	}
	for (i = 0; i < n; i += n_cols)
		print_row(cells + i, width, n_cols, indent, out);
out:
	for (i = 0; cells && i < n; i++)
		free(cells[i]);
	free(cells);
	free(width);
	return r;
}
