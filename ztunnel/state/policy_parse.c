/* AuthorizationPolicy / PeerAuthentication -> typed form, translated as
 * istiod translates them for ztunnel (SPEC.md §5.2, §5.4). An invalid object
 * is never half-applied: it is reported (object, field, reason) and applied
 * in its fail-closed form (ALLOW allows nothing, DENY denies everything in
 * its scope, PeerAuthentication is STRICT). */
#include "build.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pctx {
	struct build *b;
	const cJSON *obj; /* the policy, named only in findings */
	const char *ns;
	uint8_t action;
	bool invalid;
	const char *invalid_reason;
	bool l7; /* current rule used HTTP-only attributes */
};

static void invalid(struct pctx *c, const char *field, const char *fmt, const char *value)
{
	char reason[300];

	snprintf(reason, sizeof(reason), fmt, value ? value : "");
	diags_add(c->b->diags, ZT_DIAG_INVALID, build_object_name(c->b, c->obj), field, "%s", reason);
	if (!c->invalid) {
		c->invalid = true;
		c->invalid_reason = arena_printf(c->b->a, "%s: %s", field, reason);
	}
}

/* Checks that obj only has the given keys (the API server would prune
 * others, so one here means a hand-written mistake). */
static void known_keys(struct pctx *c, const cJSON *obj, const char *field, const char *const *keys)
{
	const cJSON *it;

	/* Absent is fine; an array or scalar where an object belongs has no
	 * keys to compare (found by tests/fuzz: a selector given as an array). */
	if (!obj)
		return;
	if (!cJSON_IsObject(obj)) {
		invalid(c, field, "not an object%s", "");
		return;
	}
	cJSON_ArrayForEach(it, obj) {
		const char *const *k = keys;
		while (*k && strcmp(*k, it->string))
			k++;
		if (!*k) {
			char f[200];
			snprintf(f, sizeof(f), "%s%s%s", field, *field ? "." : "", it->string);
			invalid(c, f, "unknown field%s", "");
		}
	}
}

/* Converts one list value into *item; returns NULL or a reason format
 * taking the value as its one %s. */
typedef const char *(*item_fn)(struct pctx *c, const char *value, void *item);

/* Every list field: a non-empty list of non-empty strings, each converted;
 * the first bad value makes the policy invalid with its exact index. */
static void parse_list(struct pctx *c, const cJSON *arr, const char *field, size_t size,
		       item_fn convert, const void **items, uint32_t *count)
{
	uint32_t n = 0, i = 0;
	const cJSON *it;
	char f[220];

	if (!arr)
		return;
	if (!cJSON_IsArray(arr)) {
		invalid(c, field, "must be a list of strings%s", "");
		return;
	}
	cJSON_ArrayForEach(it, arr) n++;
	char *v = n ? build_calloc(c->b, n, size) : NULL;
	if (!v)
		return;
	cJSON_ArrayForEach(it, arr) {
		const char *why = "must be a non-empty string%s";
		if (cJSON_IsString(it) && *it->valuestring)
			why = convert(c, it->valuestring, v + (size_t)i * size);
		if (why) {
			snprintf(f, sizeof(f), "%s[%u]", field, i);
			invalid(c, f, why, cJSON_IsString(it) ? it->valuestring : "");
			return;
		}
		i++;
	}
	*items = v;
	*count = n;
}

/* istiod: "*" presence, "x*" prefix, "*x" suffix, anything else exact. */
static const char *string_match(struct pctx *c, const char *v, void *item)
{
	struct zt_str_match *m = item;
	size_t len = strlen(v);
	const char *star = strchr(v, '*');

	if (!strcmp(v, "*"))
		*m = (struct zt_str_match){ "", ZT_MATCH_PRESENCE };
	else if (v[0] == '*' && !strchr(v + 1, '*'))
		*m = (struct zt_str_match){ build_strdup(c->b, v + 1), ZT_MATCH_SUFFIX };
	else if (star == v + len - 1)
		*m = (struct zt_str_match){ arena_printf(c->b->a, "%.*s", (int)len - 1, v),
					    ZT_MATCH_PREFIX };
	else if (!star)
		*m = (struct zt_str_match){ build_strdup(c->b, v), ZT_MATCH_EXACT };
	else
		return "\"%s\": only prefix*, *suffix or * are supported";
	m->len = m->value ? (uint32_t)strlen(m->value) : 0;
	return NULL;
}

static const char *cidr(struct pctx *c, const char *s, void *item)
{
	struct zt_cidr *out = item;
	char ip[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	const char *bad = "\"%s\" is not an IP address or CIDR";

	(void)c;
	if (n >= sizeof(ip))
		return bad;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (zt_ip_parse(ip, &out->ip) < 0)
		return bad;
	unsigned max = out->ip.family == 2 /* AF_INET */ ? 32 : 128;
	out->prefix = (uint8_t)max;
	if (slash) {
		char *end;
		long p = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || p < 0 || p > (long)max)
			return bad;
		out->prefix = (uint8_t)p;
	}
	return NULL;
}

/* istiod drops non-numeric ports, which would widen the rule; we make the
 * policy invalid instead (fail closed). */
static const char *port(struct pctx *c, const char *s, void *item)
{
	char *end;
	long p = strtol(s, &end, 10);

	(void)c;
	if (*end || p < 1 || p > 65535)
		return "\"%s\" is not a port number 1-65535";
	*(uint16_t *)item = (uint16_t)p;
	return NULL;
}

/* serviceAccounts: "ns/sa", or "sa" meaning the policy's namespace. */
static const char *service_account(struct pctx *c, const char *v, void *item)
{
	const char *slash = strchr(v, '/');

	if ((slash && (strchr(slash + 1, '/') || slash == v || !slash[1])) || strchr(v, '*'))
		return "\"%s\" must be \"namespace/name\" or \"name\"";
	struct zt_str_match *m = item;
	*m = (struct zt_str_match){
		slash ? build_strdup(c->b, v) : arena_printf(c->b->a, "%s/%s", c->ns, v), ZT_MATCH_EXACT
	};
	m->len = m->value ? (uint32_t)strlen(m->value) : 0;
	return NULL;
}

#define LIST(c, arr, field, conv, list)                                                     \
	parse_list(c, arr, field, sizeof(*(list)->items), conv, (const void **)&(list)->items, \
		   &(list)->n)
#define parse_strings(c, a, f, l) LIST(c, a, f, string_match, l)
#define parse_cidrs(c, a, f, l) LIST(c, a, f, cidr, l)
#define parse_ports(c, a, f, l) LIST(c, a, f, port, l)
#define parse_service_accounts(c, a, f, l) LIST(c, a, f, service_account, l)

static bool has_any(const cJSON *o, const char *const *keys)
{
	for (; *keys; keys++)
		if (cJSON_GetObjectItemCaseSensitive(o, *keys))
			return true;
	return false;
}

static const char *const source_l7[] = { "requestPrincipals", "notRequestPrincipals",
					 "remoteIpBlocks", "notRemoteIpBlocks", NULL };
static const char *const source_l4[] = { "principals", "notPrincipals", "namespaces",
					 "notNamespaces", "ipBlocks", "notIpBlocks",
					 "serviceAccounts", "notServiceAccounts", NULL };
static const char *const op_l7[] = { "hosts", "notHosts", "methods", "notMethods", "paths",
				     "notPaths", NULL };
static const char *const op_l4[] = { "ports", "notPorts", NULL };

#define F(name) (snprintf(f, sizeof(f), "%s.%s", field, name), f)

static void parse_source(struct pctx *c, const cJSON *src, const char *field, struct zt_match *m)
{
	char f[200];
	static const char *const all[] = { "principals", "notPrincipals", "namespaces",
					   "notNamespaces", "ipBlocks", "notIpBlocks",
					   "serviceAccounts", "notServiceAccounts",
					   "requestPrincipals", "notRequestPrincipals",
					   "remoteIpBlocks", "notRemoteIpBlocks", NULL };

	known_keys(c, src, field, all);
	parse_strings(c, cJSON_GetObjectItem(src, "principals"), F("principals"), &m->principals);
	parse_strings(c, cJSON_GetObjectItem(src, "notPrincipals"), F("notPrincipals"), &m->not_principals);
	parse_strings(c, cJSON_GetObjectItem(src, "namespaces"), F("namespaces"), &m->namespaces);
	parse_strings(c, cJSON_GetObjectItem(src, "notNamespaces"), F("notNamespaces"), &m->not_namespaces);
	parse_cidrs(c, cJSON_GetObjectItem(src, "ipBlocks"), F("ipBlocks"), &m->source_ips);
	parse_cidrs(c, cJSON_GetObjectItem(src, "notIpBlocks"), F("notIpBlocks"), &m->not_source_ips);
	parse_service_accounts(c, cJSON_GetObjectItem(src, "serviceAccounts"), F("serviceAccounts"),
			       &m->service_accounts);
	parse_service_accounts(c, cJSON_GetObjectItem(src, "notServiceAccounts"),
			       F("notServiceAccounts"), &m->not_service_accounts);
	if (has_any(src, source_l7)) {
		c->l7 = true;
		m->match_all = c->action == ZT_ACTION_DENY && !has_any(src, source_l4);
	}
}

static void parse_operation(struct pctx *c, const cJSON *op, const char *field, struct zt_match *m)
{
	char f[200];
	static const char *const all[] = { "ports", "notPorts", "hosts", "notHosts", "methods",
					   "notMethods", "paths", "notPaths", NULL };

	known_keys(c, op, field, all);
	parse_ports(c, cJSON_GetObjectItem(op, "ports"), F("ports"), &m->destination_ports);
	parse_ports(c, cJSON_GetObjectItem(op, "notPorts"), F("notPorts"), &m->not_destination_ports);
	if (has_any(op, op_l7)) {
		c->l7 = true;
		m->match_all = c->action == ZT_ACTION_DENY && !has_any(op, op_l4);
	}
}

/* when: one clause holding one match. Returns false for an HTTP-only key
 * (the condition contributes nothing at L4). */
static bool parse_condition(struct pctx *c, const cJSON *cond, const char *field, struct zt_match *m)
{
	static const char *const keys[] = { "key", "values", "notValues", NULL };
	static const char *const l7_prefixes[] = { "request.headers[", "request.auth.", "remote.ip",
						   "connection.sni", "experimental.envoy.filters.",
						   "source.serviceAccount", NULL };
	char f[200];
	const char *key = json_str(cond, "key");
	const cJSON *vals = cJSON_GetObjectItem(cond, "values");
	const cJSON *nvals = cJSON_GetObjectItem(cond, "notValues");

	known_keys(c, cond, field, keys);
	if (!key) {
		invalid(c, F("key"), "missing%s", "");
		return false;
	}
	if (!cJSON_GetArraySize(vals) && !cJSON_GetArraySize(nvals)) {
		invalid(c, field, "needs values or notValues%s", "");
		return false;
	}
	if (!strcmp(key, "source.ip")) {
		parse_cidrs(c, vals, F("values"), &m->source_ips);
		parse_cidrs(c, nvals, F("notValues"), &m->not_source_ips);
	} else if (!strcmp(key, "destination.ip")) {
		parse_cidrs(c, vals, F("values"), &m->destination_ips);
		parse_cidrs(c, nvals, F("notValues"), &m->not_destination_ips);
	} else if (!strcmp(key, "source.namespace")) {
		parse_strings(c, vals, F("values"), &m->namespaces);
		parse_strings(c, nvals, F("notValues"), &m->not_namespaces);
	} else if (!strcmp(key, "source.principal")) {
		parse_strings(c, vals, F("values"), &m->principals);
		parse_strings(c, nvals, F("notValues"), &m->not_principals);
	} else if (!strcmp(key, "destination.port")) {
		parse_ports(c, vals, F("values"), &m->destination_ports);
		parse_ports(c, nvals, F("notValues"), &m->not_destination_ports);
	} else {
		for (const char *const *p = l7_prefixes; *p; p++) {
			if (!strncmp(key, *p, strlen(*p))) {
				c->l7 = true;
				return false;
			}
		}
		invalid(c, F("key"), "unknown condition key \"%s\"", key);
		return false;
	}
	return true;
}
#undef F

/* from / to lists: one clause whose matches OR. */
static int parse_entries(struct pctx *c, const cJSON *list, const char *field, const char *inner,
			 struct zt_clause *out)
{
	uint32_t n = (uint32_t)cJSON_GetArraySize(list), i = 0;
	const cJSON *it;
	char f[160], g[200];

	if (!n)
		return 0;
	struct zt_match *m = build_calloc(c->b, n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	cJSON_ArrayForEach(it, list) {
		const char *keys[] = { inner, NULL };
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		known_keys(c, it, f, keys);
		const cJSON *body = json_obj(it, inner);
		snprintf(g, sizeof(g), "%s.%s", f, inner);
		if (!body)
			invalid(c, g, "missing%s", "");
		else if (!strcmp(inner, "source"))
			parse_source(c, body, g, &m[i]);
		else
			parse_operation(c, body, g, &m[i]);
		i++;
	}
	*out = (struct zt_clause){ m, n };
	return 1;
}

static void parse_rule(struct pctx *c, const cJSON *rule, uint32_t idx, struct zt_rule *out)
{
	static const char *const keys[] = { "from", "to", "when", NULL };
	char field[64], f[96];
	const cJSON *from = cJSON_GetObjectItem(rule, "from"), *to = cJSON_GetObjectItem(rule, "to");
	const cJSON *when = cJSON_GetObjectItem(rule, "when"), *it;

	snprintf(field, sizeof(field), "spec.rules[%u]", idx);
	if (!cJSON_IsObject(rule)) {
		invalid(c, field, "must be an object%s", "");
		return;
	}
	known_keys(c, rule, field, keys);
	uint32_t n_when = (uint32_t)cJSON_GetArraySize(when);
	struct zt_clause *cl = build_calloc(c->b, 2 + n_when, sizeof(*cl));
	if (!cl)
		return;
	uint32_t n = 0;
	c->l7 = false;
	snprintf(f, sizeof(f), "%s.from", field);
	if ((from && !cJSON_IsArray(from)) || (to && !cJSON_IsArray(to)) || (when && !cJSON_IsArray(when))) {
		invalid(c, field, "from, to and when must be lists%s", "");
		return;
	}
	n += parse_entries(c, from, f, "source", &cl[n]) > 0;
	snprintf(f, sizeof(f), "%s.to", field);
	n += parse_entries(c, to, f, "operation", &cl[n]) > 0;
	uint32_t i = 0;
	cJSON_ArrayForEach(it, when) {
		struct zt_match *m = build_calloc(c->b, 1, sizeof(*m));
		snprintf(f, sizeof(f), "%s.when[%u]", field, i++);
		if (m && parse_condition(c, it, f, m))
			cl[n++] = (struct zt_clause){ m, 1 };
	}
	*out = (struct zt_rule){ cl, n, false, false };
	if (c->l7 && c->action == ZT_ACTION_ALLOW) {
		out->dropped_l7 = true;
		build_warn(c->b, c->obj, field,
			   "uses HTTP-only attributes: at L4 this ALLOW rule never matches (Istio)");
	} else if (c->l7 && c->action == ZT_ACTION_DENY) {
		out->stripped_l7 = true;
		build_warn(c->b, c->obj, field,
			   "uses HTTP-only attributes: ignored at L4, the rest of the DENY rule applies (Istio)");
	}
}

/* Fail-closed replacement of an invalid policy's rules. */
static void fail_closed(struct pctx *c, struct zt_authz_policy *p)
{
	p->invalid = true;
	p->invalid_reason = c->invalid_reason;
	p->rules = NULL;
	p->n_rules = 0;
	if (p->action != ZT_ACTION_ALLOW) {
		/* DENY (or an unknown action): one rule without clauses matches all. */
		p->action = ZT_ACTION_DENY;
		p->rules = build_calloc(c->b, 1, sizeof(struct zt_rule));
		p->n_rules = p->rules ? 1 : 0;
	}
}

static uint8_t parse_scope(struct pctx *c, const cJSON *spec, const cJSON *md, struct zt_labels *sel)
{
	const cJSON *selector = cJSON_GetObjectItem(spec, "selector");

	if (cJSON_GetObjectItem(spec, "targetRef") || cJSON_GetObjectItem(spec, "targetRefs"))
		return ZT_SCOPE_WAYPOINT;
	if (selector) {
		static const char *const keys[] = { "matchLabels", NULL };
		known_keys(c, selector, "spec.selector", keys);
		/* A bad selector leaves the scope namespace-wide: wider is stricter
		 * for the fail-closed forms. */
		const cJSON *ml = cJSON_GetObjectItem(selector, "matchLabels"), *it;
		bool ok = !ml || cJSON_IsObject(ml);
		const cJSON *walk = ok ? ml : NULL;
		cJSON_ArrayForEach(it, walk) ok &= cJSON_IsString(it);
		if (!ok)
			invalid(c, "spec.selector.matchLabels", "must be a map of strings%s", "");
		else
			json_labels(c->b, ml, c->obj, "spec.selector.matchLabels", sel);
	}
	if (sel->n)
		return ZT_SCOPE_WORKLOAD;
	return !strcmp(json_str(md, "namespace"), c->b->m->root_namespace) ? ZT_SCOPE_GLOBAL
									 : ZT_SCOPE_NAMESPACE;
}

int policy_parse_authz(struct build *b, const cJSON *item, struct zt_authz_policy *p)
{
	static const char *const spec_keys[] = { "selector", "targetRef", "targetRefs", "action",
						 "rules", "provider", NULL };
	static const char *const actions[] = { "ALLOW", "DENY", "AUDIT", "CUSTOM" };
	const cJSON *md = json_obj(item, "metadata"), *spec = cJSON_GetObjectItem(item, "spec");
	const cJSON *rules, *it;
	struct pctx c = { .b = b, .obj = item, .ns = json_str(md, "namespace") };

	p->name = build_strdup(b, json_str(md, "name"));
	p->namespace = build_strdup(b, c.ns);
	p->key = arena_printf(b->a, "%s/%s", p->namespace, p->name);
	p->created = json_timestamp(md);
	const char *dry = json_str(json_obj(md, "annotations"), "istio.io/dry-run");
	p->dry_run = dry && !strcmp(dry, "true");
	if (spec && !cJSON_IsObject(spec)) {
		invalid(&c, "spec", "must be an object%s", "");
		spec = NULL;
	}
	known_keys(&c, spec, "spec", spec_keys);
	const char *action = json_str(spec, "action");
	p->action = ZT_ACTION_ALLOW;
	if (action) {
		uint8_t a = 0;
		while (a < 4 && strcmp(actions[a], action))
			a++;
		if (a == 4) {
			invalid(&c, "spec.action", "unknown action \"%s\" (ALLOW, DENY, AUDIT, CUSTOM)", action);
			p->action = ZT_ACTION_DENY;
		} else {
			p->action = a;
		}
	}
	c.action = p->action;
	p->scope = parse_scope(&c, spec, md, &p->selector);
	rules = cJSON_GetObjectItem(spec, "rules");
	if (rules && !cJSON_IsArray(rules)) {
		invalid(&c, "spec.rules", "must be a list%s", "");
	} else if (rules) {
		uint32_t n = (uint32_t)cJSON_GetArraySize(rules), i = 0;
		struct zt_rule *r = build_calloc(b, n ? n : 1, sizeof(*r));
		if (!r)
			return 0;
		cJSON_ArrayForEach(it, rules) {
			parse_rule(&c, it, i, &r[i]);
			i++;
		}
		p->rules = r;
		p->n_rules = n;
	}
	if (c.invalid)
		fail_closed(&c, p);
	else if (p->scope == ZT_SCOPE_WAYPOINT)
		build_warn(b, c.obj, "spec.targetRefs",
			   "targets a waypoint: not enforced by ztunnel (Istio)");
	else if (p->action == ZT_ACTION_AUDIT || p->action == ZT_ACTION_CUSTOM)
		build_warn(b, c.obj, "spec.action", "%s is not enforced at L4 by ztunnel (Istio)",
			   actions[p->action]);
	return 1;
}

static int mtls_mode(struct pctx *c, const cJSON *mtls, const char *field)
{
	static const char *const modes[] = { "UNSET", "PERMISSIVE", "STRICT", "DISABLE" };
	static const char *const keys[] = { "mode", NULL };
	const char *mode = json_str(mtls, "mode");

	known_keys(c, mtls, field, keys);
	if (!mode)
		return ZT_MTLS_UNSET;
	for (int i = 0; i < 4; i++)
		if (!strcmp(modes[i], mode))
			return i;
	char f[80];
	snprintf(f, sizeof(f), "%s.mode", field);
	invalid(c, f, "unknown mode \"%s\" (UNSET, PERMISSIVE, STRICT, DISABLE)", mode);
	return ZT_MTLS_STRICT;
}

int policy_parse_peer_authn(struct build *b, const cJSON *item, struct zt_peer_authn *p)
{
	static const char *const spec_keys[] = { "selector", "mtls", "portLevelMtls", NULL };
	const cJSON *md = json_obj(item, "metadata"), *spec = json_obj(item, "spec"), *it;
	struct pctx c = { .b = b, .obj = item, .ns = json_str(md, "namespace") };

	p->name = build_strdup(b, json_str(md, "name"));
	p->namespace = build_strdup(b, c.ns);
	p->key = arena_printf(b->a, "%s/%s", p->namespace, p->name);
	p->created = json_timestamp(md);
	known_keys(&c, spec, "spec", spec_keys);
	p->scope = parse_scope(&c, spec, md, &p->selector);
	if (p->scope == ZT_SCOPE_WAYPOINT) {
		invalid(&c, "spec.targetRef", "PeerAuthentication has no targetRef%s", "");
		p->scope = ZT_SCOPE_NAMESPACE;
	}
	p->mode = (uint8_t)mtls_mode(&c, json_obj(spec, "mtls"), "spec.mtls");
	const cJSON *ports = cJSON_GetObjectItem(spec, "portLevelMtls");
	uint32_t n = (uint32_t)cJSON_GetArraySize(ports), i = 0;
	if (ports && !cJSON_IsObject(ports)) {
		invalid(&c, "spec.portLevelMtls", "must be a map of port to {mode}%s", "");
	} else if (n && p->scope != ZT_SCOPE_WORKLOAD) {
		build_warn(b, c.obj, "spec.portLevelMtls",
			   "only applies with a workload selector outside the root namespace (Istio): ignored");
	} else if (n) {
		struct zt_port_mtls *pm = build_calloc(b, n, sizeof(*pm));
		if (!pm)
			return 0;
		cJSON_ArrayForEach(it, ports) {
			char f[96], *end;
			long port = strtol(it->string, &end, 10);
			snprintf(f, sizeof(f), "spec.portLevelMtls[%s]", it->string);
			if (*end || port < 1 || port > 65535)
				invalid(&c, f, "\"%s\" is not a port number 1-65535", it->string);
			pm[i++] = (struct zt_port_mtls){ (uint16_t)port,
							 (uint8_t)mtls_mode(&c, it, f) };
		}
		p->ports = pm;
		p->n_ports = n;
	}
	if (c.invalid) {
		p->invalid = true;
		p->invalid_reason = c.invalid_reason;
		p->mode = ZT_MTLS_STRICT;
		p->ports = NULL;
		p->n_ports = 0;
	}
	return 1;
}
