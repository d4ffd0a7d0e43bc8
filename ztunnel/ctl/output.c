/* -o json|yaml: one document, the same data the table shows. */
#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int output_format_parse(const char *s, enum output_format *out)
{
	static const char *const names[] = { [OUTPUT_TABLE] = "table", [OUTPUT_JSON] = "json",
					     [OUTPUT_YAML] = "yaml" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum output_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

int output_document(const cJSON *doc, enum output_format f, FILE *out)
{
	if (f == OUTPUT_YAML)
		return output_yaml(doc, out);
	if (f != OUTPUT_JSON)
		return -EINVAL;
	char *text = cJSON_Print(doc);
	if (!text)
		return -ENOMEM;
	int r = fputs(text, out) < 0 || fputc('\n', out) == EOF ? -EIO : 0;
	free(text);
	return r;
}
