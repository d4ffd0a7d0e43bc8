/* Reason names (metric label values, access-log fields) and Istio's
 * response flags for them. */
#include "ztunnel/telemetry.h"

static const struct {
	const char *name, *flag;
} reasons[TM_REASONS] = {
	[TM_R_NONE] = { "ok", "-" },
	[TM_R_POLICY_DENIED] = { "policy_denied", "DENY" },
	[TM_R_STRICT_PLAINTEXT] = { "strict_plaintext", "DENY" },
	[TM_R_DST_UNKNOWN] = { "destination_unknown", "DENY" },
	[TM_R_NOT_ENROLLED] = { "not_enrolled", "CONNECT" },
	[TM_R_NO_UPSTREAM] = { "no_healthy_upstream", "CONNECT" },
	[TM_R_RESERVED_PORT] = { "reserved_port", "CONNECT" },
	[TM_R_WORKLOAD_PENDING] = { "workload_pending", "IDENTITY_ERROR" },
	[TM_R_CONNECT_REFUSED] = { "connect_refused", "CONNECT" },
	[TM_R_CONNECT_TIMEOUT] = { "connect_timeout", "CONNECT" },
	[TM_R_CONNECT_FAILED] = { "connect_failed", "CONNECT" },
	[TM_R_TLS] = { "tls", "TLS_FAILURE" },
	[TM_R_HTTP2] = { "http2", "H2_HANDSHAKE_FAILURE" },
	[TM_R_NO_CERTIFICATE] = { "no_certificate", "IDENTITY_ERROR" },
	[TM_R_PEER_REFUSED] = { "peer_refused", "CONNECT" },
	[TM_R_BAD_REQUEST] = { "bad_request", "CONNECT" },
	[TM_R_REVOKED] = { "revoked", "DENY" },
	[TM_R_IDLE_TIMEOUT] = { "idle_timeout", "-" },
	[TM_R_RESET] = { "reset", "-" },
	[TM_R_STREAM_GONE] = { "stream_gone", "CONNECT" },
	[TM_R_LIMIT] = { "limit", "CONNECT" },
	[TM_R_SHUTDOWN] = { "shutdown", "-" },
	[TM_R_NO_MEMORY] = { "out_of_memory", "CONNECT" },
	[TM_R_SOCKET] = { "socket_error", "CONNECT" },
};

const char *tm_reason_name(enum tm_reason r)
{
	return (unsigned)r < TM_REASONS && reasons[r].name ? reasons[r].name : "unknown";
}

const char *tm_reason_flag(enum tm_reason r)
{
	return (unsigned)r < TM_REASONS && reasons[r].flag ? reasons[r].flag : "-";
}
