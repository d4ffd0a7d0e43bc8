/* One CreateCertificate as ztunnel-ca answers it: who is asking (a
 * TokenReview), may they have that identity (authorize.c, against the
 * pods the API reports), then a leaf for their CSR from the CA files.
 * Every refusal is logged with the caller, its node and the identity,
 * and counted by reason. */
#include "ca_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/clock.h"
#include "ztunnel/grpc.h"
#include "ztunnel/log.h"

/* Pods not followed live for longer than this are not trusted to say
 * where an identity runs. */
#define PODS_STALE_MS 30000

static const int grpc_of[CA_OUTCOMES] = {
	[CA_ISSUED] = GRPC_OK,
	[CA_UNAUTHENTICATED] = GRPC_UNAUTHENTICATED,
	[CA_NOT_SA] = GRPC_PERMISSION_DENIED,
	[CA_IMPERSONATION] = GRPC_PERMISSION_DENIED,
	[CA_UNBOUND_TOKEN] = GRPC_PERMISSION_DENIED,
	[CA_NOT_ON_NODE] = GRPC_PERMISSION_DENIED,
	[CA_BAD_REQUEST] = GRPC_INVALID_ARGUMENT,
	[CA_TOO_MANY] = GRPC_RESOURCE_EXHAUSTED,
	[CA_UNAVAILABLE] = GRPC_UNAVAILABLE,
};

void ca_service_refresh(struct ca_service *svc)
{
	struct zt_model *m = NULL;
	struct zt_diags diags;
	struct ca_pods fresh;
	char *text = NULL;
	size_t len = 0;
	int r = 0;

	/* A new batch of changes was built into a model (which we do not use:
	 * one bad pod fails a whole build); the objects themselves count. */
	if (!svc->pods_source || kube_source_take(svc->pods_source, &m, &diags, &r) < 0)
		return;
	model_free(m);
	diags_release(&diags);
	if (kube_source_print(svc->pods_source, &text, &len) < 0 || ca_pods_build(text, len, &fresh) < 0) {
		log_error("cannot index the pods; keeping the previous ones");
		free(text);
		return;
	}
	free(text);
	pthread_mutex_lock(&svc->pods_lock);
	ca_pods_free(&svc->pods);
	svc->pods = fresh;
	svc->have_pods = true;
	pthread_mutex_unlock(&svc->pods_lock);
}

bool ca_service_pods_fresh(struct ca_service *svc)
{
	return svc->have_pods && svc->pods_source && kube_source_unwatched_ms(svc->pods_source) <= PODS_STALE_MS;
}

/* One chain entry per certificate (leaf, intermediates), as Istio's
 * clients read cert_chain; the trust bundle last, whole. */
static int split_pem(char *chain, char *roots, struct ca_response *resp)
{
	static const char end[] = "-----END CERTIFICATE-----";
	size_t n = 1;

	for (const char *p = chain; (p = strstr(p, end)); p += sizeof(end) - 1)
		n++;
	if (!(resp->chain = calloc(n, sizeof(char *))))
		return -ENOMEM;
	char *p = chain, *e;
	while ((e = strstr(p, end))) {
		e += sizeof(end) - 1;
		while (*p == '\n')
			p++;
		if (asprintf(&resp->chain[resp->n], "%.*s\n", (int)(e - p), p) < 0)
			return -ENOMEM;
		resp->n++;
		p = e;
	}
	if (!(resp->chain[resp->n] = strdup(roots)))
		return -ENOMEM;
	resp->n++;
	return 0;
}

static enum ca_outcome sign(struct ca_service *svc, const struct ca_request *req, const struct spiffe_id *id,
			    struct ca_answer *out, char *serial, size_t serial_size, int64_t *ttl, char *why,
			    size_t why_size)
{
	struct ca_signer *s = &svc->signer;
	struct ca_response resp = { 0 };
	char *chain = NULL;
	int64_t now = (int64_t)time(NULL);
	int r, loaded;

	*ttl = req->validity_s > 0 ? req->validity_s : s->default_ttl_s;
	if (*ttl > s->max_ttl_s)
		*ttl = s->max_ttl_s;
	pthread_mutex_lock(&s->lock);
	if ((r = loaded = local_ca_provider_load(&s->files, now, why, why_size)) == 0 &&
	    (r = ca_sign_csr(s->files.ca, req->csr, id, now, *ttl, &chain, serial, serial_size, why, why_size)) == 0)
		r = split_pem(chain, s->files.roots, &resp);
	pthread_mutex_unlock(&s->lock);
	free(chain);
	if (r == 0)
		r = grpc_ca_response_encode(&resp, &out->body, &out->body_len);
	grpc_ca_response_free(&resp);
	if (r == 0)
		return CA_ISSUED;
	/* The caller's CSR was at fault only if the CA itself is fine. */
	if (loaded == 0 && (r == -EINVAL || r == -EPERM))
		return CA_BAD_REQUEST;
	if (!why[0])
		snprintf(why, why_size, "%s", strerror(-r));
	return CA_UNAVAILABLE;
}

static void finish(struct ca_service *svc, enum ca_outcome o, const char *why, const char *asked,
		   const struct kube_caller *who, const struct ca_peer *peer, struct ca_answer *out)
{
	atomic_fetch_add(&svc->counts[o], 1);
	if (o == CA_ISSUED)
		return;
	free(out->body);
	out->body = NULL;
	out->body_len = 0;
	out->grpc_status = grpc_of[o];
	/* The CA's own troubles (file paths, the API server's words) stay in
	 * its log; the caller learns it may try again. */
	snprintf(out->message, sizeof(out->message), "%s",
		 o == CA_UNAVAILABLE ? "the CA cannot answer right now; try again" : why);
	/* One address hammering us is told once a second in the log. */
	static _Atomic int64_t last_too_many_ms;
	int64_t t = clock_mono_ms(), last = atomic_load(&last_too_many_ms);
	if (o == CA_TOO_MANY && (t - last < 1000 || !atomic_compare_exchange_strong(&last_too_many_ms, &last, t)))
		return;
	log_warn("certificate refused", LF_STR("reason", ca_outcome_name(o)), LF_STR("error", why),
		 LF_STR("identity", asked), LF_STR("caller", who ? who->username : ""), LF_STR("node", who ? who->node : ""),
		 LF_STR("peer", peer->name));
}

void ca_refuse(struct ca_service *svc, enum ca_outcome o, const char *why, const struct ca_peer *peer,
	       struct ca_answer *out)
{
	memset(out, 0, sizeof(*out));
	finish(svc, o, why, "", NULL, peer, out);
}

void ca_serve_request(struct ca_service *svc, const char *token, const struct ca_peer *peer, const uint8_t *body,
		      size_t len, struct ca_answer *out)
{
	struct ca_request req = { 0 };
	struct kube_caller who = { 0 };
	struct spiffe_id grant;
	char why[512] = "", serial[40] = "", uri[800] = "";
	enum ca_outcome o;
	int64_t ttl = 0, now = clock_mono_ms() / 1000;
	int r;

	memset(out, 0, sizeof(*out));
	if (grpc_ca_request_decode(body, len, &req) < 0 || !req.csr || !req.csr[0]) {
		snprintf(why, sizeof(why), "not a CreateCertificate request with a CSR");
		o = CA_BAD_REQUEST;
	} else if (!token || !token[0]) {
		snprintf(why, sizeof(why), "no bearer token");
		o = CA_UNAUTHENTICATED;
	} else if (!ca_limits_auth_allowed(svc->limits, peer->addr, now)) {
		/* Each attempt costs the API server a TokenReview. */
		snprintf(why, sizeof(why), "too many failed authentications from %s; try again later", peer->addr);
		o = CA_TOO_MANY;
	} else if ((r = kube_token_review(&svc->api, token, svc->audience, &who, why, sizeof(why))) < 0) {
		o = r == -EACCES ? CA_UNAUTHENTICATED : CA_UNAVAILABLE;
		if (o == CA_UNAUTHENTICATED)
			ca_limits_auth_failed(svc->limits, peer->addr, now);
	} else {
		pthread_mutex_lock(&svc->pods_lock);
		o = ca_authorize(&svc->rules, &who, req.impersonated, ca_service_pods_fresh(svc) ? &svc->pods : NULL,
				 &grant, why, sizeof(why));
		pthread_mutex_unlock(&svc->pods_lock);
		if (o == CA_ISSUED) {
			spiffe_format(&grant, uri, sizeof(uri));
			o = sign(svc, &req, &grant, out, serial, sizeof(serial), &ttl, why, sizeof(why));
		}
	}
	finish(svc, o, why, req.impersonated && req.impersonated[0] ? req.impersonated : uri, &who, peer, out);
	if (o == CA_ISSUED)
		log_info("certificate issued", LF_STR("identity", uri), LF_STR("caller", who.username),
			 LF_STR("node", who.node), LF_STR("serial", serial), LF_INT("ttl_s", ttl), LF_STR("peer", peer->name));
	grpc_ca_request_free(&req);
}

uint64_t ca_signer_refresh(struct ca_signer *s, int64_t *not_after)
{
	char err[256];

	pthread_mutex_lock(&s->lock);
	local_ca_provider_load(&s->files, (int64_t)time(NULL), err, sizeof(err));
	uint64_t loads = s->files.loads;
	if (not_after)
		*not_after = s->files.ca ? ca_not_after(s->files.ca) : 0;
	pthread_mutex_unlock(&s->lock);
	return loads;
}

int ca_signer_server_cert(struct ca_signer *s, const char *const *dns, size_t n, struct leaf_cert *out, char *err,
			  size_t err_size)
{
	int64_t now = (int64_t)time(NULL);
	int r;

	pthread_mutex_lock(&s->lock);
	if ((r = local_ca_provider_load(&s->files, now, err, err_size)) == 0)
		r = ca_mint_server(s->files.ca, dns, n, now, s->default_ttl_s, out, err, err_size);
	if (r == 0 && !(out->roots_pem = strdup(s->files.roots)))
		r = -ENOMEM;
	pthread_mutex_unlock(&s->lock);
	return r;
}
