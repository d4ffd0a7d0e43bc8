/* An index of one workload's policy list by what a connection must carry
 * for a rule to match: a necessary condition, never a sufficient one. The
 * evaluator (policy/authz.c) then checks, in list order, only the rules a
 * connection could match, instead of every rule of every policy: with
 * 1,000 policies that all apply, about twenty rules instead of 2,000.
 *
 * A rule matches only if every clause does, and a clause only if one of
 * its matches does, and a match only if each of its positive lists does.
 * So a clause whose every (non-empty) match has a positive list of one
 * kind - exact principals, exact namespaces, IPv4 source blocks of /16 or
 * longer, destination ports - can match only connections that carry one of
 * the union of those values: the rule is filed under each of them. A rule
 * with no such clause is filed under "anywhere" and always checked. */
#include "build.h"
#include "index.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

enum dim {
	DIM_PRINCIPAL = 0, /* most selective first: the preferred anchor */
	DIM_NAMESPACE,
	DIM_SOURCE,        /* keys in the /24 and /16 tables */
	DIM_PORT,
	DIM_COUNT,
	DIM_NONE = DIM_COUNT,
};

/* Source blocks are filed by their first three bytes (/24 and longer) or
 * two (/16 to /23): a connection looks up both. */
enum table { T_PRINCIPAL = 0, T_NAMESPACE, T_SRC24, T_SRC16, T_PORT, T_COUNT };

struct zt_authz_index {
	const uint32_t *rule_policy, *rule_index; /* rule id -> list position, rule */
	uint32_t n_rules, n_allow;
	struct zt_rule_ids anywhere;
	/* value -> struct zt_rule_ids; NULL when no rule is filed by it */
	struct zt_index *tables[T_COUNT];
};

/* Ascending rule ids that share a key; cap counts while sizing. */
struct bucket {
	struct zt_rule_ids ids;
	uint32_t cap;
};

static bool exact_only(const struct zt_str_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->items[i].kind != ZT_MATCH_EXACT)
			return false;
	return l->n > 0;
}

static bool ipv4_blocks(const struct zt_cidr_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->items[i].ip.family != AF_INET || l->items[i].prefix < 16)
			return false;
	return l->n > 0;
}

/* How many keys match m files under d; -1 when d cannot anchor m. */
static int64_t match_keys(const struct zt_match *m, enum dim d)
{
	if (zt_match_empty(m))
		return 0;
	if (m->match_all)
		return -1;
	const uint32_t n = d == DIM_PRINCIPAL ? m->principals.n
			 : d == DIM_NAMESPACE ? m->namespaces.n
			 : d == DIM_SOURCE    ? m->source_ips.n
					      : m->destination_ports.n;
	bool usable = d == DIM_PRINCIPAL ? exact_only(&m->principals)
		    : d == DIM_NAMESPACE ? exact_only(&m->namespaces)
		    : d == DIM_SOURCE	 ? ipv4_blocks(&m->source_ips)
					 : n > 0;
	return usable ? (int64_t)n : -1;
}

/* How many keys clause cl files under d (the union of its matches'); -1
 * when one of its matches cannot be anchored by d. */
static int64_t clause_keys(const struct zt_clause *cl, enum dim d)
{
	int64_t keys = 0;

	for (uint32_t i = 0; i < cl->n; i++) {
		int64_t k = match_keys(&cl->matches[i], d);
		if (k < 0)
			return -1;
		keys += k;
	}
	return keys;
}

struct anchor {
	const struct zt_clause *clause;
	enum dim dim;
	bool never; /* the rule cannot match at all */
};

/* The clause and kind that file rule r under the fewest, most selective
 * keys; dim DIM_NONE when no clause restricts what r can match. */
static struct anchor anchor_of(const struct zt_rule *r)
{
	struct anchor best = { NULL, DIM_NONE, r->dropped_l7 };
	int64_t best_keys = 0;

	for (uint32_t c = 0; !best.never && c < r->n; c++) {
		const struct zt_clause *cl = &r->clauses[c];
		for (enum dim d = 0; cl->n && d < DIM_COUNT; d++) {
			int64_t keys = clause_keys(cl, d);
			if (keys == 0)
				best.never = true; /* every match is empty */
			else if (keys > 0 && (best.dim == DIM_NONE || d < best.dim ||
					      (d == best.dim && keys < best_keys))) {
				best = (struct anchor){ cl, d, false };
				best_keys = keys;
			}
		}
	}
	return best;
}

static enum table table_of(enum dim d, uint8_t prefix)
{
	switch (d) {
	case DIM_PRINCIPAL: return T_PRINCIPAL;
	case DIM_NAMESPACE: return T_NAMESPACE;
	case DIM_SOURCE: return prefix >= 24 ? T_SRC24 : T_SRC16;
	default: return T_PORT;
	}
}

/* The passes over every key of every anchored rule. */
enum pass { SIZE_TABLES, MAKE_BUCKETS, FILL };

struct filing {
	struct build *b;
	struct zt_authz_index *ix;
	enum pass pass;
	uint32_t id;
	uint32_t keys[T_COUNT]; /* filed per table, an upper bound of its size */
	int err;
};

static void file_key(struct filing *f, enum dim d, uint8_t prefix, const void *key, uint32_t len)
{
	enum table t = table_of(d, prefix);
	struct bucket *bk;

	if (f->err)
		return;
	if (f->pass == SIZE_TABLES) {
		f->keys[t]++;
		return;
	}
	bk = index_get(f->ix->tables[t], key, len);
	if (f->pass == MAKE_BUCKETS) {
		if (!bk) {
			void *copy = build_calloc(f->b, 1, len);
			bk = build_calloc(f->b, 1, sizeof(*bk));
			if (!copy || !bk || index_put(f->ix->tables[t], memcpy(copy, key, len), len, bk, NULL) < 0) {
				f->err = -ENOMEM;
				return;
			}
		}
		bk->cap++; /* an upper bound: a value may repeat within a clause */
		return;
	}
	if (bk->ids.n && bk->ids.ids[bk->ids.n - 1] == f->id)
		return; /* the same value twice in one clause */
	((uint32_t *)bk->ids.ids)[bk->ids.n++] = f->id;
}

static void file_rule(struct filing *f, const struct anchor *a)
{
	for (uint32_t i = 0; i < a->clause->n; i++) {
		const struct zt_match *m = &a->clause->matches[i];
		const struct zt_str_list *s = a->dim == DIM_PRINCIPAL ? &m->principals : &m->namespaces;

		if (zt_match_empty(m))
			continue;
		for (uint32_t j = 0; a->dim == DIM_SOURCE && j < m->source_ips.n; j++) {
			const struct zt_cidr *c = &m->source_ips.items[j];
			file_key(f, a->dim, c->prefix, c->ip.addr, c->prefix >= 24 ? 3 : 2);
		}
		for (uint32_t j = 0; a->dim == DIM_PORT && j < m->destination_ports.n; j++)
			file_key(f, a->dim, 0, &m->destination_ports.items[j], sizeof(uint16_t));
		for (uint32_t j = 0; a->dim <= DIM_NAMESPACE && j < s->n; j++)
			file_key(f, a->dim, 0, s->items[j].value, s->items[j].len);
	}
}

static void fill_bucket(void *val, void *ctx)
{
	struct bucket *bk = val;
	struct filing *f = ctx;

	if (!f->err && !(bk->ids.ids = build_calloc(f->b, bk->cap, sizeof(uint32_t))))
		f->err = -ENOMEM;
}

static int file_rules(struct filing *f, const struct anchor *anchors)
{
	struct zt_authz_index *ix = f->ix;
	uint32_t anywhere = 0;

	for (f->pass = SIZE_TABLES; f->pass <= FILL; f->pass++) {
		for (f->id = 0; f->id < ix->n_rules; f->id++) {
			const struct anchor *a = &anchors[f->id];
			if (a->never)
				continue;
			if (a->dim != DIM_NONE)
				file_rule(f, a);
			else if (f->pass == FILL)
				((uint32_t *)ix->anywhere.ids)[ix->anywhere.n++] = f->id;
			else if (f->pass == SIZE_TABLES)
				anywhere++;
		}
		if (f->err)
			return f->err;
		if (f->pass == SIZE_TABLES) {
			for (enum table t = 0; t < T_COUNT; t++)
				if (f->keys[t] && !(ix->tables[t] = index_new(f->b->a, f->keys[t])))
					return -ENOMEM;
			if (!(ix->anywhere.ids = build_calloc(f->b, anywhere, sizeof(uint32_t))))
				return -ENOMEM;
		} else if (f->pass == MAKE_BUCKETS) {
			for (enum table t = 0; t < T_COUNT; t++)
				index_each(ix->tables[t], fill_bucket, f);
			if (f->err)
				return f->err;
		}
	}
	return 0;
}

struct zt_authz_index *policy_index_build(struct build *b, const struct zt_authz_policy *const *list,
					  uint32_t n)
{
	struct zt_authz_index *ix = build_calloc(b, 1, sizeof(*ix));
	uint32_t *policy, *rule, id = 0;
	struct anchor *anchors;

	if (!ix)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		ix->n_rules += list[i]->n_rules;
		ix->n_allow += list[i]->action == ZT_ACTION_ALLOW && zt_authz_enforced(list[i]);
	}
	ix->rule_policy = policy = build_calloc(b, ix->n_rules, sizeof(*policy));
	ix->rule_index = rule = build_calloc(b, ix->n_rules, sizeof(*rule));
	anchors = arena_calloc(&b->scratch, ix->n_rules, sizeof(*anchors));
	if (!policy || !rule || !anchors)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < list[i]->n_rules; j++, id++) {
			policy[id] = i;
			rule[id] = j;
			anchors[id] = anchor_of(&list[i]->rules[j]);
		}
	}
	struct filing f = { .b = b, .ix = ix };
	return file_rules(&f, anchors) < 0 ? NULL : ix;
}

static void add_list(struct policy_cursor *c, const struct zt_index *t, const void *key, uint32_t len)
{
	const struct zt_rule_ids *ids = index_get(t, key, len);

	if (ids && ids->n)
		c->lists[c->n_lists++] = *ids;
}

void policy_index_probe(const struct zt_authz_index *ix, const struct policy_probe *p,
			struct policy_cursor *c)
{
	c->ix = ix;
	c->n_lists = 0;
	if (ix->anywhere.n)
		c->lists[c->n_lists++] = ix->anywhere;
	/* Plaintext carries no principal or namespace: nothing positive matches "". */
	if (p->principal_len)
		add_list(c, ix->tables[T_PRINCIPAL], p->principal, (uint32_t)p->principal_len);
	if (p->ns_len)
		add_list(c, ix->tables[T_NAMESPACE], p->ns, (uint32_t)p->ns_len);
	if (p->src->family == AF_INET) {
		add_list(c, ix->tables[T_SRC24], p->src->addr, 3);
		add_list(c, ix->tables[T_SRC16], p->src->addr, 2);
	}
	add_list(c, ix->tables[T_PORT], &p->port, sizeof(p->port));
}

bool policy_cursor_next(struct policy_cursor *c, uint32_t *policy, uint32_t *rule)
{
	uint32_t best = UINT32_MAX;

	/* A k-way merge of at most six ascending lists; a rule filed under two
	 * of them (a /24 and a /16 block) comes out once. */
	for (uint32_t i = 0; i < c->n_lists; i++)
		if (c->lists[i].n && c->lists[i].ids[0] < best)
			best = c->lists[i].ids[0];
	if (best == UINT32_MAX)
		return false;
	for (uint32_t i = 0; i < c->n_lists; i++) {
		if (c->lists[i].n && c->lists[i].ids[0] == best) {
			c->lists[i].ids++;
			c->lists[i].n--;
		}
	}
	*policy = c->ix->rule_policy[best];
	*rule = c->ix->rule_index[best];
	return true;
}

uint32_t policy_index_allows(const struct zt_authz_index *ix)
{
	return ix->n_allow;
}
