/* --kubeconfig: the current context's API server, CA and credentials from
 * a kubeconfig file (YAML, read with libyaml; JSON is YAML too). Only what
 * an agent can use safely: a token or token file, or a client certificate;
 * exec and auth-provider plugins and insecure-skip-tls-verify are refused
 * with the reason (fail closed: never an unverified API server). */
#include "ztunnel/kube.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <yaml.h>

#include "ztunnel/file.h"

#define KUBECONFIG_MAX (1u << 20)
#define YAML_DEPTH_MAX 32

static int fail(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* One YAML node (mapping, sequence or scalar, from the next event on) as
 * cJSON; scalars stay strings, which is all a kubeconfig needs. */
static cJSON *yaml_node(yaml_parser_t *p, yaml_event_t *ev, int depth)
{
	cJSON *out = NULL;

	if (depth > YAML_DEPTH_MAX)
		return NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return cJSON_CreateString((const char *)ev->data.scalar.value);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool map = ev->type == YAML_MAPPING_START_EVENT;
		yaml_event_type_t end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
		out = map ? cJSON_CreateObject() : cJSON_CreateArray();
		for (;;) {
			yaml_event_t e, v;
			if (!out || !yaml_parser_parse(p, &e))
				goto bad;
			if (e.type == end) {
				yaml_event_delete(&e);
				return out;
			}
			if (!map) {
				cJSON *item = yaml_node(p, &e, depth + 1);
				yaml_event_delete(&e);
				if (!item)
					goto bad;
				cJSON_AddItemToArray(out, item);
				continue;
			}
			if (e.type != YAML_SCALAR_EVENT || !yaml_parser_parse(p, &v)) {
				yaml_event_delete(&e);
				goto bad;
			}
			cJSON *item = yaml_node(p, &v, depth + 1);
			yaml_event_delete(&v);
			if (!item) {
				yaml_event_delete(&e);
				goto bad;
			}
			cJSON_AddItemToObject(out, (const char *)e.data.scalar.value, item);
			yaml_event_delete(&e);
		}
	}
	default: /* aliases: no kubeconfig needs them */
		return NULL;
	}
bad:
	cJSON_Delete(out);
	return NULL;
}

static cJSON *yaml_parse(const char *text, size_t len, char *err, size_t size)
{
	yaml_parser_t p;
	yaml_event_t ev;
	cJSON *doc = NULL;

	if (!yaml_parser_initialize(&p))
		return NULL;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	/* stream start, document start, then the root node */
	for (int i = 0; i < 3 && yaml_parser_parse(&p, &ev); i++) {
		if (i == 2)
			doc = yaml_node(&p, &ev, 0);
		yaml_event_delete(&ev);
	}
	if (!doc)
		fail(err, size, "not a YAML map%s%s (line %zu)", p.problem ? ": " : "",
		     p.problem ? p.problem : "", p.problem_mark.line + 1);
	yaml_parser_delete(&p);
	return doc;
}

/* The entry named name in a list of {name, <key>: {...}}. */
static const cJSON *named(const cJSON *doc, const char *list, const char *key, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, list)) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		if (n && name && !strcmp(n, name))
			return cJSON_GetObjectItemCaseSensitive(it, key);
	}
	return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return s && *s ? s : NULL;
}

/* A path relative to the kubeconfig's folder, as kubectl reads it. */
static char *path_of(const char *kubeconfig, const char *p)
{
	char *dir_copy = strdup(kubeconfig), *out = NULL;

	if (!dir_copy)
		return NULL;
	if (p[0] == '/')
		out = strdup(p);
	else if (asprintf(&out, "%s/%s", dirname(dir_copy), p) < 0)
		out = NULL;
	free(dir_copy);
	return out;
}

/* *-data fields: base64 of PEM. */
static char *decode(const char *b64, const char *what, char *err, size_t size)
{
	word32 len = (word32)strlen(b64), out_len = len;
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	if (Base64_Decode((const byte *)b64, len, (byte *)out, &out_len) != 0) {
		free(out);
		fail(err, size, "%s is not valid base64", what);
		return NULL;
	}
	out[out_len] = '\0';
	return out;
}

/* A file path field or its inline -data twin; NULL when neither (or on error: err set). */
static int file_or_data(const char *path, const cJSON *o, const char *field, char **file, char **pem,
			char *err, size_t size)
{
	char data_field[64];
	const char *f = str(o, field);

	snprintf(data_field, sizeof(data_field), "%s-data", field);
	const char *d = str(o, data_field);
	if (d && !(*pem = decode(d, data_field, err, size)))
		return -EINVAL;
	if (!d && f && !(*file = path_of(path, f)))
		return -ENOMEM;
	return 0;
}

void kubeconfig_free(struct kubeconfig *kc)
{
	free(kc->server);
	free(kc->token);
	free(kc->token_file);
	free(kc->ca_file);
	free(kc->ca_pem);
	free(kc->cert_file);
	free(kc->cert_pem);
	free(kc->key_file);
	free(kc->key_pem);
	memset(kc, 0, sizeof(*kc));
}

int kubeconfig_load(const char *path, struct kubeconfig *kc, char *err, size_t size)
{
	char *text = NULL;
	size_t len = 0;
	int r = file_read(path, KUBECONFIG_MAX, &text, &len);

	memset(kc, 0, sizeof(*kc));
	if (r < 0) {
		fail(err, size, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	cJSON *doc = yaml_parse(text, len, err, size);
	free(text);
	if (!doc)
		return -EINVAL;
	const char *ctx_name = str(doc, "current-context");
	const cJSON *ctx = named(doc, "contexts", "context", ctx_name);
	const char *cluster_name = str(ctx, "cluster"), *user_name = str(ctx, "user");
	const cJSON *cluster = named(doc, "clusters", "cluster", cluster_name);
	const cJSON *user = named(doc, "users", "user", user_name);
	const char *insecure = str(cluster, "insecure-skip-tls-verify");

	r = -EINVAL;
	if (!ctx_name)
		fail(err, size, "no current-context");
	else if (!ctx)
		fail(err, size, "current-context \"%s\" is not in contexts", ctx_name);
	else if (!cluster)
		fail(err, size, "cluster \"%s\" of context \"%s\" is not in clusters", cluster_name ? cluster_name : "",
		     ctx_name);
	else if (!str(cluster, "server"))
		fail(err, size, "cluster \"%s\" has no server", cluster_name);
	else if (strncmp(str(cluster, "server"), "https://", 8))
		fail(err, size, "cluster \"%s\": the server is not https://: the agent's token never goes out "
				"unencrypted",
		     cluster_name);
	else if (insecure && !strcmp(insecure, "true"))
		fail(err, size, "cluster \"%s\" sets insecure-skip-tls-verify: the agent never follows an API "
				"server it cannot verify (give certificate-authority or certificate-authority-data)",
		     cluster_name);
	else if (user_name && !user)
		fail(err, size, "user \"%s\" of context \"%s\" is not in users", user_name, ctx_name);
	else if (cJSON_GetObjectItemCaseSensitive(user, "exec") ||
		 cJSON_GetObjectItemCaseSensitive(user, "auth-provider"))
		fail(err, size, "user \"%s\" uses a credential plugin (exec/auth-provider), which the agent does not "
				"run: give it a token, tokenFile or client certificate",
		     user_name);
	else if (str(user, "username") || str(user, "password"))
		fail(err, size, "user \"%s\" uses basic authentication, which Kubernetes removed: give it a token, "
				"tokenFile or client certificate",
		     user_name);
	else
		r = 0;
	if (r == 0 && (!(kc->server = strdup(str(cluster, "server"))) ||
		       (str(user, "token") && !(kc->token = strdup(str(user, "token")))) ||
		       (str(user, "tokenFile") && !(kc->token_file = path_of(path, str(user, "tokenFile"))))))
		r = -ENOMEM;
	if (r == 0)
		r = file_or_data(path, cluster, "certificate-authority", &kc->ca_file, &kc->ca_pem, err, size);
	if (r == 0)
		r = file_or_data(path, user, "client-certificate", &kc->cert_file, &kc->cert_pem, err, size);
	if (r == 0)
		r = file_or_data(path, user, "client-key", &kc->key_file, &kc->key_pem, err, size);
	if (r == 0 && !kc->ca_file && !kc->ca_pem)
		r = fail(err, size, "cluster \"%s\" has no certificate-authority(-data): the agent verifies the API "
				    "server against it",
			 cluster_name);
	if (r == 0 && (!kc->cert_file && !kc->cert_pem) != (!kc->key_file && !kc->key_pem))
		r = fail(err, size, "user \"%s\" has a client certificate without its key, or a key without its "
				    "certificate",
			 user_name);
	if (r == -ENOMEM)
		fail(err, size, "out of memory");
	cJSON_Delete(doc);
	if (r < 0)
		kubeconfig_free(kc);
	return r;
}

void kubeconfig_apply(const struct kubeconfig *kc, struct kube_config *cfg)
{
	cfg->server = kc->server;
	cfg->token = kc->token;
	cfg->token_file = kc->token_file;
	cfg->ca_file = kc->ca_file;
	cfg->ca_pem = kc->ca_pem;
	cfg->cert_file = kc->cert_file;
	cfg->cert_pem = kc->cert_pem;
	cfg->key_file = kc->key_file;
	cfg->key_pem = kc->key_pem;
}
