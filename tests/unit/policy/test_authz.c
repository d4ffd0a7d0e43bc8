/* L4 authorization, table-driven through the real snapshot parser: every
 * case of SPEC.md §5.5 (numbered), then each field and its negation, the
 * wildcard forms, scopes, action order, dry-run, the HTTP-field
 * translation and PeerAuthentication modes and ports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../state/snap.h"
#include "ztunnel/authz.h"

/* An AuthorizationPolicy ("AP") or PeerAuthentication ("PA"). */
struct pol {
	const char *kind, *ns, *name, *spec;
	bool dry_run;
};

struct tcase {
	const char *what;
	struct pol p[4];
	char conn;        /* SPEC §5.5: 'P' plaintext, 'T' td identity, 'A' td-alt identity */
	const char *peer; /* overrides the identity ("-": plaintext) */
	uint16_t port;    /* overrides the destination port */
	const char *wl;   /* destination workload, "ns1/web" by default */
	bool allowed;
	uint8_t reason;
	int rule;         /* expected deciding rule index (-1: none / not checked) */
};

#define AP(ns, name, spec) { "AP", ns, name, spec, false }
#define DRY(ns, name, spec) { "AP", ns, name, spec, true }
#define PA(ns, name, spec) { "PA", ns, name, spec, false }
#define ALLOWS(spec) { AP("ns1", "p", "{\"action\":\"ALLOW\",\"rules\":" spec "}") }
#define YES true, AUTHZ_ALLOWED_BY, 0
#define NO false, AUTHZ_NOT_ALLOWED, -1
#define OPEN true, AUTHZ_NO_ALLOW_POLICIES, -1
#define DENIED(r) false, AUTHZ_DENIED_BY, r
#define STRICT false, AUTHZ_STRICT_MTLS, -1

static const char *const T_ID = "td/ns/namespace/sa/account";

static const struct tcase cases[] = {
	/* SPEC §5.5 1-13: one ALLOW match against P / T / A. */
	{ "1 namespaces P", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "1 namespaces T", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "1 namespaces A", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "2 notNamespaces P", ALLOWS("[{\"from\":[{\"source\":{\"notNamespaces\":[\"namespace\"]}}]}]"), 'P', 0, 0, 0, YES },
	{ "2 notNamespaces T", ALLOWS("[{\"from\":[{\"source\":{\"notNamespaces\":[\"namespace\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "2 notNamespaces A", ALLOWS("[{\"from\":[{\"source\":{\"notNamespaces\":[\"namespace\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "3 serviceAccounts P", ALLOWS("[{\"from\":[{\"source\":{\"serviceAccounts\":[\"namespace/account\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "3 serviceAccounts T", ALLOWS("[{\"from\":[{\"source\":{\"serviceAccounts\":[\"namespace/account\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "3 serviceAccounts A", ALLOWS("[{\"from\":[{\"source\":{\"serviceAccounts\":[\"namespace/account\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "4 notServiceAccounts P", ALLOWS("[{\"from\":[{\"source\":{\"notServiceAccounts\":[\"namespace/account\"]}}]}]"), 'P', 0, 0, 0, YES },
	{ "4 notServiceAccounts T", ALLOWS("[{\"from\":[{\"source\":{\"notServiceAccounts\":[\"namespace/account\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "4 notServiceAccounts A", ALLOWS("[{\"from\":[{\"source\":{\"notServiceAccounts\":[\"namespace/account\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "5 principals P", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "5 principals T", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "5 principals A", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "6 notPrincipals P", ALLOWS("[{\"from\":[{\"source\":{\"notPrincipals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'P', 0, 0, 0, YES },
	{ "6 notPrincipals T", ALLOWS("[{\"from\":[{\"source\":{\"notPrincipals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "6 notPrincipals A", ALLOWS("[{\"from\":[{\"source\":{\"notPrincipals\":[\"td/ns/namespace/sa/account\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "7 ipBlocks P", ALLOWS("[{\"from\":[{\"source\":{\"ipBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'P', 0, 0, 0, YES },
	{ "7 ipBlocks T", ALLOWS("[{\"from\":[{\"source\":{\"ipBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "7 ipBlocks A", ALLOWS("[{\"from\":[{\"source\":{\"ipBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "8 notIpBlocks P", ALLOWS("[{\"from\":[{\"source\":{\"notIpBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "8 notIpBlocks T", ALLOWS("[{\"from\":[{\"source\":{\"notIpBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "8 notIpBlocks A", ALLOWS("[{\"from\":[{\"source\":{\"notIpBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "9 destination.ip P", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.2/32\"]}]}]"), 'P', 0, 0, 0, YES },
	{ "9 destination.ip T", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.2/32\"]}]}]"), 'T', 0, 0, 0, YES },
	{ "9 destination.ip A", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.2/32\"]}]}]"), 'A', 0, 0, 0, NO },
	{ "10 destination.ip notValues P", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"notValues\":[\"127.0.0.2/32\"]}]}]"), 'P', 0, 0, 0, NO },
	{ "10 destination.ip notValues T", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"notValues\":[\"127.0.0.2/32\"]}]}]"), 'T', 0, 0, 0, NO },
	{ "10 destination.ip notValues A", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"notValues\":[\"127.0.0.2/32\"]}]}]"), 'A', 0, 0, 0, YES },
	{ "11 destination.ip /24 P", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.1/24\"]}]}]"), 'P', 0, 0, 0, YES },
	{ "11 destination.ip /24 T", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.1/24\"]}]}]"), 'T', 0, 0, 0, YES },
	{ "11 destination.ip /24 A", ALLOWS("[{\"when\":[{\"key\":\"destination.ip\",\"values\":[\"127.0.0.1/24\"]}]}]"), 'A', 0, 0, 0, YES },
	{ "12 ports P", ALLOWS("[{\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]"), 'P', 0, 0, 0, YES },
	{ "12 ports T", ALLOWS("[{\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "12 ports A", ALLOWS("[{\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "13 notPorts P", ALLOWS("[{\"to\":[{\"operation\":{\"notPorts\":[\"8080\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "13 notPorts T", ALLOWS("[{\"to\":[{\"operation\":{\"notPorts\":[\"8080\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "13 notPorts A", ALLOWS("[{\"to\":[{\"operation\":{\"notPorts\":[\"8080\"]}}]}]"), 'A', 0, 0, 0, YES },
	/* 14-17: empty forms. */
	{ "14 all-empty match is skipped", ALLOWS("[{\"from\":[{\"source\":{}}]}]"), 'P', 0, 0, 0, NO },
	{ "15 clause without matches is true", ALLOWS("[{\"from\":[]}]"), 'P', 0, 0, 0, YES },
	{ "16 rules [{}] matches everything", ALLOWS("[{}]"), 'P', 0, 0, 0, YES },
	{ "17 rules [] matches nothing", ALLOWS("[]"), 'P', 0, 0, 0, NO },
	/* 18-23: clauses AND, values OR, rules OR. */
	{ "18 ns a|b AND port 80: a,80", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\",\"b\"]}}],\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]"), 'T', "td/ns/a/sa/x", 80, 0, YES },
	{ "19 ns a|b AND port 80: b,80", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\",\"b\"]}}],\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]"), 'T', "td/ns/b/sa/x", 80, 0, YES },
	{ "20 (network is not an attribute) b,80", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\",\"b\"]}}],\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]"), 'A', "td/ns/b/sa/x", 80, 0, YES },
	{ "21 ns a|b AND port 80: bad,80", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\",\"b\"]}}],\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]"), 'T', "td/ns/bad/sa/x", 80, 0, NO },
	{ "22 ns a|b AND port 80: b,12345", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\",\"b\"]}}],\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]"), 'T', "td/ns/b/sa/x", 12345, 0, NO },
	{ "23 rules OR: a", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\"]}}]},{\"from\":[{\"source\":{\"namespaces\":[\"b\"]}}]}]"), 'T', "td/ns/a/sa/x", 0, 0, YES },
	{ "23 rules OR: b (second rule)", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\"]}}]},{\"from\":[{\"source\":{\"namespaces\":[\"b\"]}}]}]"), 'T', "td/ns/b/sa/x", 0, 0, true, AUTHZ_ALLOWED_BY, 1 },
	{ "23 rules OR: bad", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"a\"]}}]},{\"from\":[{\"source\":{\"namespaces\":[\"b\"]}}]}]"), 'T', "td/ns/bad/sa/x", 0, 0, NO },
	/* 24-26: string forms, on principals. */
	{ "24 exact foo vs foo", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo\"]}}]}]"), 'T', "foo", 0, 0, YES },
	{ "24 exact foo vs not", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo\"]}}]}]"), 'T', "not", 0, 0, NO },
	{ "24 exact foo vs plaintext", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "25 prefix foo* vs foobar", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo*\"]}}]}]"), 'T', "foobar", 0, 0, YES },
	{ "25 prefix foo* vs notfoo", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo*\"]}}]}]"), 'T', "notfoo", 0, 0, NO },
	{ "25 prefix foo* vs plaintext", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"foo*\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "25 suffix *foo vs barfoo", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*foo\"]}}]}]"), 'T', "barfoo", 0, 0, YES },
	{ "25 suffix *foo vs foonot", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*foo\"]}}]}]"), 'T', "foonot", 0, 0, NO },
	{ "25 suffix *foo vs plaintext", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*foo\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "26 presence * vs foo", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*\"]}}]}]"), 'T', "foo", 0, 0, YES },
	{ "26 presence * vs plaintext", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*\"]}}]}]"), 'P', 0, 0, 0, NO },
	/* 27-31: decisions (state.rs). */
	{ "27 workload without policies", ALLOWS("[]"), 'T', 0, 0, "ns2/other", OPEN },
	{ "28 allowed principal", { AP("ns1", "allow", "{\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/default/sa/defaultacct\"]}}]}]}") },
	  'T', "cluster.local/ns/default/sa/defaultacct", 0, 0, YES },
	{ "29 other principal", { AP("ns1", "allow", "{\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/default/sa/defaultacct\"]}}]}]}") },
	  'T', "cluster.local/ns/default/sa/not-defaultacct", 0, 0, NO },
	{ "30 DENY wins over ALLOW", { AP("ns1", "allow", "{\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/default/sa/denyacct\"]}}]}]}"),
				       AP("ns1", "deny", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/default/sa/denyacct\"]}}]}]}") },
	  'T', "cluster.local/ns/default/sa/denyacct", 0, 0, DENIED(0) },
	{ "31 dry-run policies never enforced", { DRY("ns1", "a", "{\"rules\":[{}]}"), DRY("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{}]}") },
	  'P', 0, 0, 0, OPEN },
	/* 32-33: PeerAuthentication. */
	{ "32 STRICT refuses plaintext", { PA("ns1", "strict", "{\"mtls\":{\"mode\":\"STRICT\"}}") }, 'P', 0, 0, 0, STRICT },
	{ "32 STRICT never affects HBONE", { PA("ns1", "strict", "{\"mtls\":{\"mode\":\"STRICT\"}}") }, 'T', 0, 0, 0, OPEN },
	{ "33 STRICT with 8080 PERMISSIVE: P to 8080", { PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"STRICT\"},\"portLevelMtls\":{\"8080\":{\"mode\":\"PERMISSIVE\"}}}") },
	  'P', 0, 8080, 0, OPEN },
	{ "33 STRICT with 8080 PERMISSIVE: P to 9090", { PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"STRICT\"},\"portLevelMtls\":{\"8080\":{\"mode\":\"PERMISSIVE\"}}}") },
	  'P', 0, 9090, 0, STRICT },
	{ "33 STRICT with 8080 PERMISSIVE: T to 9090", { PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"STRICT\"},\"portLevelMtls\":{\"8080\":{\"mode\":\"PERMISSIVE\"}}}") },
	  'T', 0, 9090, 0, OPEN },
	/* More PeerAuthentication: levels, inheritance, ports. */
	{ "mesh STRICT from the root namespace", { PA("istio-system", "mesh", "{\"mtls\":{\"mode\":\"STRICT\"}}") }, 'P', 0, 0, 0, STRICT },
	{ "namespace PERMISSIVE overrides mesh STRICT", { PA("istio-system", "mesh", "{\"mtls\":{\"mode\":\"STRICT\"}}"), PA("ns1", "ns", "{\"mtls\":{\"mode\":\"PERMISSIVE\"}}") }, 'P', 0, 0, 0, OPEN },
	{ "workload STRICT overrides namespace PERMISSIVE", { PA("ns1", "ns", "{\"mtls\":{\"mode\":\"PERMISSIVE\"}}"), PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"STRICT\"}}") }, 'P', 0, 0, 0, STRICT },
	{ "workload UNSET inherits namespace STRICT", { PA("ns1", "ns", "{\"mtls\":{\"mode\":\"STRICT\"}}"), PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"UNSET\"}}") }, 'P', 0, 0, 0, STRICT },
	{ "DISABLE admits plaintext", { PA("istio-system", "mesh", "{\"mtls\":{\"mode\":\"STRICT\"}}"), PA("ns1", "ns", "{\"mtls\":{\"mode\":\"DISABLE\"}}") }, 'P', 0, 0, 0, OPEN },
	{ "port STRICT on a PERMISSIVE workload: that port", { PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"PERMISSIVE\"},\"portLevelMtls\":{\"8080\":{\"mode\":\"STRICT\"}}}") }, 'P', 0, 8080, 0, STRICT },
	{ "port STRICT on a PERMISSIVE workload: other port", { PA("ns1", "w", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"PERMISSIVE\"},\"portLevelMtls\":{\"8080\":{\"mode\":\"STRICT\"}}}") }, 'P', 0, 9090, 0, OPEN },
	{ "PERMISSIVE does not override ALLOW policies", { PA("ns1", "ns", "{\"mtls\":{\"mode\":\"PERMISSIVE\"}}"), AP("ns1", "a", "{\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"*\"]}}]}]}") }, 'P', 0, 0, 0, NO },
	/* Scopes. */
	{ "root-namespace policy applies mesh-wide", { AP("istio-system", "g", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}]}]}") }, 'T', 0, 0, 0, DENIED(0) },
	{ "another namespace's policy does not apply", { AP("ns2", "x", "{\"action\":\"DENY\",\"rules\":[{}]}") }, 'T', 0, 0, 0, OPEN },
	{ "selector matching the workload applies", { AP("ns1", "s", "{\"action\":\"DENY\",\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"rules\":[{}]}") }, 'T', 0, 0, 0, DENIED(0) },
	{ "selector not matching does not apply", { AP("ns1", "s", "{\"action\":\"DENY\",\"selector\":{\"matchLabels\":{\"app\":\"db\"}},\"rules\":[{}]}") }, 'T', 0, 0, 0, OPEN },
	{ "targetRefs (waypoint) is not enforced", { AP("ns1", "t", "{\"action\":\"DENY\",\"targetRefs\":[{\"kind\":\"Gateway\",\"group\":\"gateway.networking.k8s.io\",\"name\":\"wp\"}],\"rules\":[{}]}") }, 'T', 0, 0, 0, OPEN },
	{ "deny-by-default: ALLOW without rules", { AP("ns1", "deny-all", "{}") }, 'T', 0, 0, 0, NO },
	/* Actions. */
	{ "DENY evaluated before a matching ALLOW", { AP("ns1", "a", "{\"rules\":[{}]}"), AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]}") }, 'T', 0, 0, 0, DENIED(0) },
	{ "DENY on another port lets ALLOW decide", { AP("ns1", "a", "{\"rules\":[{}]}"), AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]}") }, 'A', 0, 0, 0, YES },
	{ "AUDIT has no effect", { AP("ns1", "au", "{\"action\":\"AUDIT\",\"rules\":[{}]}") }, 'T', 0, 0, 0, OPEN },
	{ "CUSTOM is not supported at L4", { AP("ns1", "cu", "{\"action\":\"CUSTOM\",\"provider\":{\"name\":\"ext\"},\"rules\":[{}]}") }, 'T', 0, 0, 0, OPEN },
	{ "dry-run DENY beside an enforced ALLOW", { AP("ns1", "a", "{\"rules\":[{}]}"), DRY("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{}]}") }, 'T', 0, 0, 0, YES },
	{ "dry-run ALLOW does not make deny-by-default", { DRY("ns1", "a", "{\"rules\":[{\"from\":[{\"source\":{\"namespaces\":[\"x\"]}}]}]}") }, 'T', 0, 0, 0, OPEN },
	/* HTTP-only attributes. */
	{ "ALLOW rule with methods is dropped", ALLOWS("[{\"to\":[{\"operation\":{\"methods\":[\"GET\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "ALLOW rule with methods and ports is dropped whole", ALLOWS("[{\"to\":[{\"operation\":{\"methods\":[\"GET\"],\"ports\":[\"8080\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "ALLOW: the other rule still allows", ALLOWS("[{\"to\":[{\"operation\":{\"paths\":[\"/x\"]}}]},{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}]}]"), 'T', 0, 0, 0, true, AUTHZ_ALLOWED_BY, 1 },
	{ "ALLOW with request.headers condition is dropped", ALLOWS("[{\"when\":[{\"key\":\"request.headers[x]\",\"values\":[\"1\"]}]}]"), 'T', 0, 0, 0, NO },
	{ "DENY methods+ports: the port part denies", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"methods\":[\"GET\"],\"ports\":[\"8080\"]}}]}]}") }, 'T', 0, 0, 0, DENIED(0) },
	{ "DENY methods+ports: other port passes", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"methods\":[\"GET\"],\"ports\":[\"8080\"]}}]}]}") }, 'A', 0, 0, 0, OPEN },
	{ "DENY with only HTTP fields denies everything", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"paths\":[\"/admin\"]}}]}]}") }, 'A', 0, 0, 0, DENIED(0) },
	{ "DENY with remoteIpBlocks keeps its principals", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"remoteIpBlocks\":[\"1.2.3.4\"],\"principals\":[\"td/*\"]}}]}]}") }, 'A', 0, 0, 0, OPEN },
	{ "DENY with a header condition: rest applies", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"namespaces\":[\"namespace\"]}}],\"when\":[{\"key\":\"request.headers[x]\",\"values\":[\"1\"]}]}]}") }, 'T', 0, 0, 0, DENIED(0) },
	/* when keys. */
	{ "when source.ip", ALLOWS("[{\"when\":[{\"key\":\"source.ip\",\"values\":[\"127.0.0.0/24\"]}]}]"), 'A', 0, 0, 0, YES },
	{ "when source.ip notValues", ALLOWS("[{\"when\":[{\"key\":\"source.ip\",\"notValues\":[\"127.0.0.3\"]}]}]"), 'A', 0, 0, 0, NO },
	{ "when source.namespace", ALLOWS("[{\"when\":[{\"key\":\"source.namespace\",\"values\":[\"ns-alt\"]}]}]"), 'A', 0, 0, 0, YES },
	{ "when source.principal", ALLOWS("[{\"when\":[{\"key\":\"source.principal\",\"values\":[\"td/ns/namespace/sa/account\"]}]}]"), 'T', 0, 0, 0, YES },
	{ "when destination.port", ALLOWS("[{\"when\":[{\"key\":\"destination.port\",\"values\":[\"9090\"]}]}]"), 'A', 0, 0, 0, YES },
	{ "when destination.port notValues", ALLOWS("[{\"when\":[{\"key\":\"destination.port\",\"notValues\":[\"9090\"]}]}]"), 'A', 0, 0, 0, NO },
	{ "two when conditions AND", ALLOWS("[{\"when\":[{\"key\":\"source.namespace\",\"values\":[\"ns-alt\"]},{\"key\":\"destination.port\",\"values\":[\"8080\"]}]}]"), 'A', 0, 0, 0, NO },
	/* More wildcard and field forms. */
	{ "principal suffix */sa/account", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"*/sa/account\"]}}]}]"), 'T', 0, 0, 0, YES },
	{ "principal prefix td/ns/namespace/*", ALLOWS("[{\"from\":[{\"source\":{\"principals\":[\"td/ns/namespace/*\"]}}]}]"), 'A', 0, 0, 0, NO },
	{ "notPrincipals * denies plaintext only (STRICT form)", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"notPrincipals\":[\"*\"]}}]}]}") }, 'P', 0, 0, 0, DENIED(0) },
	{ "notPrincipals * lets identities by", { AP("ns1", "d", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"notPrincipals\":[\"*\"]}}]}]}") }, 'T', 0, 0, 0, OPEN },
	{ "namespace prefix ns-*", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"ns-*\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "namespaces plaintext never matches presence", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"*\"]}}]}]"), 'P', 0, 0, 0, NO },
	{ "serviceAccounts short form is the policy's namespace", { AP("namespace", "p", "{\"rules\":[]}"), AP("ns1", "a", "{\"rules\":[{\"from\":[{\"source\":{\"serviceAccounts\":[\"account\"]}}]}]}") }, 'T', 0, 0, 0, NO },
	{ "serviceAccounts ignore the trust domain", ALLOWS("[{\"from\":[{\"source\":{\"serviceAccounts\":[\"ns-alt/sa=alt\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "positive and negative in one field", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"*\"],\"notNamespaces\":[\"namespace\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "positive and negative in one field, excluded", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"*\"],\"notNamespaces\":[\"namespace\"]}}]}]"), 'T', 0, 0, 0, NO },
	{ "from entries OR", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"x\"]}},{\"source\":{\"ipBlocks\":[\"127.0.0.3/32\"]}}]}]"), 'A', 0, 0, 0, YES },
	{ "fields within a source AND", ALLOWS("[{\"from\":[{\"source\":{\"namespaces\":[\"ns-alt\"],\"ipBlocks\":[\"127.0.0.1/32\"]}}]}]"), 'A', 0, 0, 0, NO },
	/* Fail closed. */
	{ "invalid DENY denies everything", { AP("ns1", "bad", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"http\"]}}]}]}") }, 'T', 0, 0, 0, DENIED(0) },
	{ "invalid ALLOW allows nothing", { AP("ns1", "bad", "{\"rules\":[{\"from\":[{\"source\":{\"ipBlocks\":[\"not-an-ip\"]}}]}]}") }, 'T', 0, 0, 0, NO },
};

static char objbuf[8192];

static void add(cJSON *l, const struct pol *p, int i)
{
	char created[32];
	snprintf(created, sizeof(created), "2024-01-01T00:00:%02dZ", i);
	if (!strcmp(p->kind, "PA"))
		snprintf(objbuf, sizeof(objbuf),
			 "{\"apiVersion\":\"security.istio.io/v1beta1\",\"kind\":\"PeerAuthentication\","
			 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"creationTimestamp\":\"%s\"},\"spec\":%s}",
			 p->name, p->ns, created, p->spec);
	else
		snprintf(objbuf, sizeof(objbuf),
			 "{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"AuthorizationPolicy\","
			 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"creationTimestamp\":\"%s\"%s},\"spec\":%s}",
			 p->name, p->ns, created,
			 p->dry_run ? ",\"annotations\":{\"istio.io/dry-run\":\"true\"}" : "", p->spec);
	snap_add(l, objbuf);
}

static struct zt_ip ip4(const char *s)
{
	struct zt_ip a = { .family = AF_INET };
	assert_int_equal(inet_pton(AF_INET, s, a.addr), 1);
	return a;
}

/* The model of l, which may hold invalid policies (applied fail-closed). */
static struct zt_model *built(cJSON *l)
{
	struct zt_model *m = NULL;
	struct zt_diags d;
	diags_init(&d);
	assert_int_equal(snap_build(l, &m, &d), 0);
	diags_release(&d);
	cJSON_Delete(l);
	return m;
}

static struct zt_model *model_for(const struct tcase *tc)
{
	cJSON *l = snap_new();
	snap_ns(l, "istio-system", NULL);
	snap_ns(l, "ns1", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_ns(l, "ns2", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_ns(l, "namespace", NULL);
	snap_pod(l, "ns1", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "ns2", "other", "10.0.0.2", "n1", "{\"app\":\"web\"}");
	for (int i = 0; i < 4 && tc->p[i].kind; i++)
		add(l, &tc->p[i], i);
	return built(l);
}

static void conn_for(const struct tcase *tc, struct authz_conn *c)
{
	bool alt = tc->conn == 'A';
	c->src = ip4(alt ? "127.0.0.3" : "127.0.0.1");
	c->dst = ip4(alt ? "127.0.0.4" : "127.0.0.2");
	c->dst_port = tc->port ? tc->port : alt ? 9090 : 8080;
	const char *peer = tc->conn == 'P' ? NULL : alt ? "td-alt/ns/ns-alt/sa/sa=alt" : T_ID;
	static char uri[300];
	if (tc->peer)
		peer = strcmp(tc->peer, "-") ? tc->peer : NULL;
	/* The cases name principals (the id without its scheme, SPEC 5.2). */
	snprintf(uri, sizeof(uri), "spiffe://%s", peer ? peer : "");
	c->peer = peer ? uri : NULL;
}

static void assert_same_decision(const struct authz_decision *a, const struct authz_decision *b)
{
	assert_int_equal(a->allowed, b->allowed);
	assert_int_equal(a->reason, b->reason);
	assert_ptr_equal(a->policy, b->policy);
	assert_int_equal(a->rule, b->rule);
	assert_ptr_equal(a->dry_run, b->dry_run);
	assert_int_equal(a->dry_run_rule, b->dry_run_rule);
	assert_ptr_equal(a->peer_authn, b->peer_authn);
}

/* authz_check through the workload's index, and the same decision made
 * by checking every rule. */
static void check_both(const struct zt_workload *w, const struct authz_conn *c, struct authz_decision *d)
{
	struct authz_decision linear;

	assert_non_null(w->n_policies ? w->authz_index : (const void *)1);
	authz_check(w, c, d);
	authz_check_linear(w, c, &linear);
	assert_same_decision(d, &linear);
}

static void the_table(void **state)
{
	(void)state;
	size_t n = sizeof(cases) / sizeof(cases[0]), failed = 0;

	assert_true(n >= 60);
	for (size_t i = 0; i < n; i++) {
		const struct tcase *tc = &cases[i];
		struct zt_model *m = model_for(tc);
		const struct zt_workload *w = pod_by_ip(m, tc->wl && !strcmp(tc->wl, "ns2/other") ? "10.0.0.2" : "10.0.0.1");
		struct authz_conn c;
		struct authz_decision d;
		conn_for(tc, &c);
		check_both(w, &c, &d);
		if (d.allowed != tc->allowed || d.reason != tc->reason || (tc->rule >= 0 && d.rule != tc->rule)) {
			fprintf(stderr, "case \"%s\": got %s (%s, rule %d), want %s (%s, rule %d)\n", tc->what,
				d.allowed ? "allow" : "deny", authz_reason_text(d.reason), d.rule,
				tc->allowed ? "allow" : "deny", authz_reason_text(tc->reason), tc->rule);
			failed++;
		}
		model_free(m);
	}
	fprintf(stderr, "%zu cases, %zu failed\n", n, failed);
	assert_int_equal(failed, 0);
}

/* The dry-run policy that would have decided is reported for the log. */
static void dry_run_findings_are_reported(void **state)
{
	(void)state;
	struct tcase tc = { "dry", { DRY("ns1", "would-deny", "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"1\"]}}]},{}]}") }, 'T' };
	struct zt_model *m = model_for(&tc);
	struct authz_conn c;
	struct authz_decision d;
	conn_for(&tc, &c);
	authz_check(pod_by_ip(m, "10.0.0.1"), &c, &d);
	assert_true(d.allowed);
	assert_non_null(d.dry_run);
	assert_string_equal(d.dry_run->name, "would-deny");
	assert_int_equal(d.dry_run_rule, 1);
	model_free(m);
}

/* For a denial, the ALLOW rule that came closest. */
static void nearest_allow_rule_is_found(void **state)
{
	(void)state;
	struct tcase tc = { "near", { AP("ns1", "a", "{\"rules\":[{\"from\":[{\"source\":{\"namespaces\":[\"x\"]}}],\"to\":[{\"operation\":{\"ports\":[\"1\"]}}]},"
						     "{\"from\":[{\"source\":{\"namespaces\":[\"x\"]}}],\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]}") }, 'T' };
	struct zt_model *m = model_for(&tc);
	const struct zt_authz_policy *p = NULL;
	struct authz_conn c;
	int rule = -1;
	uint32_t failing = 0;
	conn_for(&tc, &c);
	assert_true(authz_nearest_allow(pod_by_ip(m, "10.0.0.1"), &c, &p, &rule, &failing));
	assert_string_equal(p->name, "a");
	assert_int_equal(rule, 1);
	assert_int_equal(failing, 1);
	model_free(m);
}

/* Random policies over small pools of values, so rules often match: the
 * index must give exactly the decision of checking every rule (the
 * deciding policy and rule, the dry-run finding), whatever the shapes. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t pick(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

#define ONE_OF(a) (a)[pick(sizeof(a) / sizeof((a)[0]))]

static const char *const principals[] = { "td/ns/a/sa/x", "td/ns/b/sa/y", "td2/ns/a/sa/x", "td/ns/a/*", "*/sa/y", "*", "td/ns/b/sa/x" };
static const char *const namespaces[] = { "a", "b", "c", "a*", "*" };
static const char *const blocks[] = { "10.1.2.0/24", "10.1.2.3/32", "10.1.0.0/16", "10.1.2.0/20", "10.0.0.0/8", "10.2.2.2/31", "0.0.0.0/0", "fd00::/8", "10.1.3.128/25" };
static const char *const ports[] = { "80", "443", "8080", "9090" };
static const char *const source_fields[] = { "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "serviceAccounts" };

static void values(char *out, size_t size, const char *const *pool, uint32_t n)
{
	size_t len = (size_t)snprintf(out, size, "[");
	for (uint32_t i = 0, k = 1 + pick(2); i < k; i++)
		len += (size_t)snprintf(out + len, size - len, "%s\"%s\"", i ? "," : "", pool[pick(n)]);
	snprintf(out + len, size - len, "]");
}

static size_t random_rule(char *out, size_t size)
{
	static const char *const sas[] = { "a/x", "b/y", "a/y" };
	char v[256];
	size_t len = (size_t)snprintf(out, size, "{");
	const char *sep = "";

	if (pick(4)) {
		len += (size_t)snprintf(out + len, size - len, "\"from\":[");
		for (uint32_t i = 0, k = 1 + pick(2); i < k; i++) {
			len += (size_t)snprintf(out + len, size - len, "%s{\"source\":{", i ? "," : "");
			uint32_t first = pick(7), second = (first + 1 + pick(6)) % 7;
			for (uint32_t f = 0, nf = 1 + pick(2); f < nf; f++) {
				const char *field = source_fields[f ? second : first];
				const char *const *pool = strstr(field, "rincipals") ? principals
							  : strstr(field, "amespaces") ? namespaces
							  : strstr(field, "pBlocks") ? blocks : sas;
				uint32_t n = pool == principals ? 7 : pool == namespaces ? 5 : pool == blocks ? 9 : 3;
				values(v, sizeof(v), pool, n);
				len += (size_t)snprintf(out + len, size - len, "%s\"%s\":%s", f ? "," : "", field, v);
			}
			len += (size_t)snprintf(out + len, size - len, "}}");
		}
		len += (size_t)snprintf(out + len, size - len, "]");
		sep = ",";
	}
	if (pick(2)) {
		values(v, sizeof(v), ports, 4);
		len += (size_t)snprintf(out + len, size - len, "%s\"to\":[{\"operation\":{\"%s\":%s%s}}]", sep,
					pick(4) ? "ports" : "notPorts", v, pick(8) ? "" : ",\"methods\":[\"GET\"]");
		sep = ",";
	}
	if (!pick(4)) {
		values(v, sizeof(v), blocks, 9);
		len += (size_t)snprintf(out + len, size - len, "%s\"when\":[{\"key\":\"%s\",\"%s\":%s}]", sep,
					pick(2) ? "source.ip" : "destination.ip", pick(3) ? "values" : "notValues", v);
	}
	return len + (size_t)snprintf(out + len, size - len, "}");
}

static void index_agrees_with_every_rule_checked(void **state)
{
	(void)state;
	static const char *const peers[] = { "spiffe://td/ns/a/sa/x", "spiffe://td/ns/b/sa/y", "spiffe://td2/ns/a/sa/x",
					     "spiffe://td/ns/c/sa/y", "spiffe://td/ns/b/sa/x", NULL };
	static const char *const sources[] = { "10.1.2.3", "10.1.3.200", "10.1.9.1", "10.2.2.3", "192.168.0.1" };
	static const char *const actions[] = { "ALLOW", "ALLOW", "DENY", "AUDIT" };
	uint32_t decisions = 0, allowed = 0, denied_by = 0, dry = 0;

	for (int model = 0; model < 300; model++) {
		cJSON *l = snap_new();
		snap_ns(l, "istio-system", NULL);
		snap_ns(l, "ns1", "{\"istio.io/dataplane-mode\":\"ambient\"}");
		snap_pod(l, "ns1", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
		for (uint32_t p = 0, np = 1 + pick(40); p < np; p++) {
			char spec[4096];
			size_t len = (size_t)snprintf(spec, sizeof(spec), "{\"action\":\"%s\",\"rules\":[", ONE_OF(actions));
			for (uint32_t r = 0, nr = pick(4); r < nr; r++) {
				len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%s", r ? "," : "");
				len += random_rule(spec + len, sizeof(spec) - len);
			}
			snprintf(spec + len, sizeof(spec) - len, "]}");
			char name[16];
			snprintf(name, sizeof(name), "p%u", p);
			struct pol pol = { "AP", pick(5) ? "ns1" : "istio-system", name, spec, !pick(10) };
			add(l, &pol, (int)p % 60);
		}
		struct zt_model *m = built(l);
		const struct zt_workload *w = pod_by_ip(m, "10.0.0.1");
		for (int i = 0; i < 60; i++) {
			struct authz_conn c = { .peer = ONE_OF(peers), .src = ip4(ONE_OF(sources)), .dst = w->ips[0] };
			struct authz_decision dec;
			if (!pick(6)) {
				c.src = (struct zt_ip){ .family = AF_INET6 };
				assert_int_equal(inet_pton(AF_INET6, "fd00::1", c.src.addr), 1);
			}
			c.dst_port = (uint16_t)atoi(ONE_OF(ports));
			check_both(w, &c, &dec);
			decisions++;
			allowed += dec.reason == AUTHZ_ALLOWED_BY;
			denied_by += dec.reason == AUTHZ_DENIED_BY;
			dry += dec.dry_run != NULL;
		}
		model_free(m);
	}
	fprintf(stderr, "%u decisions: %u allowed by a rule, %u denied by a rule, %u dry-run findings\n",
		decisions, allowed, denied_by, dry);
	/* The pools make every outcome common; a generator that stopped
	 * producing matches would prove nothing. */
	assert_true(allowed > decisions / 20 && denied_by > decisions / 20 && dry > decisions / 50);
}

/* Workloads with the same policies share one list and one index. */
static void workloads_with_the_same_policies_share_an_index(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "ns1", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "ns1", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "ns1", "web2", "10.0.0.2", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "ns1", "db", "10.0.0.3", "n1", "{\"app\":\"db\"}");
	struct pol ns_wide = AP("ns1", "all", "{\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"80\"]}}]}]}");
	struct pol web = AP("ns1", "web", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"rules\":[{}]}");
	add(l, &ns_wide, 0);
	add(l, &web, 1);
	struct zt_model *m = snap_ok(l);
	const struct zt_workload *a = pod_by_ip(m, "10.0.0.1"), *b = pod_by_ip(m, "10.0.0.2"), *c = pod_by_ip(m, "10.0.0.3");
	assert_int_equal(a->n_policies, 2);
	assert_ptr_equal(a->policies, b->policies);
	assert_ptr_equal(a->authz_index, b->authz_index);
	assert_int_equal(c->n_policies, 1);
	assert_ptr_not_equal(a->authz_index, c->authz_index);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_table),
		cmocka_unit_test(index_agrees_with_every_rule_checked),
		cmocka_unit_test(workloads_with_the_same_policies_share_an_index),
		cmocka_unit_test(dry_run_findings_are_reported),
		cmocka_unit_test(nearest_allow_rule_is_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
