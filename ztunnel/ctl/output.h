/* Machine-readable output of ztunnel-ctl: a cJSON document written as JSON
 * (cJSON) or YAML (libyaml's emitter); never formatted by hand. */
#ifndef ZTUNNEL_CTL_OUTPUT_H
#define ZTUNNEL_CTL_OUTPUT_H

#include <stdio.h>

#include <cjson/cJSON.h>

enum output_format {
	OUTPUT_TABLE = 0, /* for people; each command lays out its own */
	OUTPUT_JSON,
	OUTPUT_YAML,
};

/* "table", "json" or "yaml"; -EINVAL otherwise. */
int output_format_parse(const char *s, enum output_format *out);

/* doc as pretty JSON or as one YAML document, newline-terminated: 0,
 * -ENOMEM or -EIO. OUTPUT_TABLE is not a document format (-EINVAL). */
int output_document(const cJSON *doc, enum output_format f, FILE *out);

/* The YAML half of output_document. */
int output_yaml(const cJSON *doc, FILE *out);

#endif
