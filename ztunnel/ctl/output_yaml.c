/* A cJSON tree as YAML through libyaml's emitter: mappings, sequences and
 * scalars as events; libyaml decides indentation, quoting and escaping. */
#include "output.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* A JSON string must read back as a string. libyaml quotes what YAML could
 * not hold plain, but not what a YAML reader would resolve to another
 * type: null, booleans (YAML 1.1's yes/no/on/off too), numbers, 1.1
 * timestamps and sexagesimals ("2026-12-07", "1:20"). Those all start with
 * a digit, a sign, '.' or '~', or are one of the words below, so this
 * quotes a few strings that need not be (an IP address) and misses none. */
static bool resolves_to_non_string(const char *s)
{
	static const char *const words[] = { "null", "true", "false", "yes", "no", "on", "off",
					     "y",    "n",    "=",     "<<" };

	if (!*s || strchr("0123456789+-.~", *s))
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(s, words[i]))
			return true;
	return false;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev)
{
	/* libyaml owns the event from here, on failure too. */
	return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *e, const char *text, bool is_string)
{
	yaml_event_t ev;
	int plain_ok = !is_string || !resolves_to_non_string(text);

	/* No tag, quoted_implicit: a quoted scalar reads back as a string. */
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), plain_ok, 1,
					  YAML_ANY_SCALAR_STYLE))
		return -ENOMEM;
	return emit(e, &ev);
}

static int emit_node(yaml_emitter_t *e, const cJSON *j);

static int emit_children(yaml_emitter_t *e, const cJSON *j, bool keys)
{
	const cJSON *c;
	int r = 0;

	cJSON_ArrayForEach(c, j) {
		if (keys && (r = emit_scalar(e, c->string, true)) < 0)
			return r;
		if ((r = emit_node(e, c)) < 0)
			return r;
	}
	return 0;
}

/* A mapping (object) or a sequence (array) and its children. */
static int emit_collection(yaml_emitter_t *e, const cJSON *j, bool mapping)
{
	yaml_event_t ev;
	int r;
	int ok = mapping ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE)
			 : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE);

	if (!ok)
		return -ENOMEM;
	if ((r = emit(e, &ev)) < 0 || (r = emit_children(e, j, mapping)) < 0)
		return r;
	ok = mapping ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev);
	return ok ? emit(e, &ev) : -ENOMEM;
}

static int emit_node(yaml_emitter_t *e, const cJSON *j)
{
	if (cJSON_IsObject(j) || cJSON_IsArray(j))
		return emit_collection(e, j, cJSON_IsObject(j));
	if (cJSON_IsString(j))
		return emit_scalar(e, j->valuestring, true);
	/* Numbers, booleans and null spelled as the JSON output spells them. */
	char *text = cJSON_PrintUnformatted(j);
	if (!text)
		return -ENOMEM;
	int r = emit_scalar(e, text, false);
	free(text);
	return r;
}

static int emit_document(yaml_emitter_t *e, const cJSON *doc)
{
	yaml_event_t ev;
	int r;

	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || (r = emit(e, &ev)) < 0)
		return -EIO;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || (r = emit(e, &ev)) < 0)
		return -EIO;
	if ((r = emit_node(e, doc)) < 0)
		return r;
	if (!yaml_document_end_event_initialize(&ev, 1) || (r = emit(e, &ev)) < 0)
		return -EIO;
	if (!yaml_stream_end_event_initialize(&ev) || (r = emit(e, &ev)) < 0)
		return -EIO;
	return yaml_emitter_flush(e) ? 0 : -EIO;
}

int output_yaml(const cJSON *doc, FILE *out)
{
	yaml_emitter_t e;

	if (!yaml_emitter_initialize(&e))
		return -ENOMEM;
	yaml_emitter_set_output_file(&e, out);
	yaml_emitter_set_unicode(&e, 1);
	/* No folding: identities and base64 PEM stay on one line each. */
	yaml_emitter_set_width(&e, -1);
	int r = emit_document(&e, doc);
	if (r < 0 && e.problem)
		fprintf(stderr, "error: YAML output: %s\n", e.problem);
	yaml_emitter_delete(&e);
	return r;
}
