/*
 * authres.h - Authentication-Results (RFC 8601): a bounded parser, and the
 * decision whether a message's From: is authentic.
 *
 * The header is added by the verifiers that run before halo-milter
 * (OpenDKIM, OpenDMARC, rspamd, ...), each naming itself by its authserv-id.
 * A header is worth something only when its authserv-id is one the operator
 * trusts (authserv_ids) AND the upstream MTA or filter removed any copy of
 * that authserv-id that arrived from outside (OpenDMARC and rspamd do so for
 * their own id). Only what the decision needs is kept: per method result,
 * whether it passed and the domain it speaks for.
 *
 * Everything here is pure (no I/O), so the fuzzer and the unit tests run it
 * as intake does.
 */
#ifndef HALO_AUTHRES_H
#define HALO_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#define AUTHRES_INPUT_MAX    8192   /* longest header value parsed */
#define AUTHRES_ID_MAX       255    /* longest authserv-id kept */
#define AUTHRES_DOMAIN_MAX   253    /* longest domain kept */
#define AUTHRES_RESULTS_MAX  16     /* method results kept per header */

enum authres_method {
	AUTHRES_OTHER = 0,
	AUTHRES_DMARC,
	AUTHRES_DKIM,
	AUTHRES_SPF
};

/* One "method=result" with the property that names its domain. */
struct authres_result {
	enum authres_method method;
	bool pass;                          /* result is "pass" */
	/* dmarc: header.from; dkim: header.d (else the domain of header.i);
	 * spf: the domain of smtp.mailfrom. Lower case; "" when absent. */
	char domain[AUTHRES_DOMAIN_MAX + 1];
};

/* One parsed header. */
struct authres {
	char authserv_id[AUTHRES_ID_MAX + 1];   /* lower case */
	size_t n_results;
	struct authres_result results[AUTHRES_RESULTS_MAX];
};

/*
 * Parse the value of one Authentication-Results header (LEN bytes, without
 * the field name; folded lines allowed) into OUT. Comments are skipped,
 * quoted strings unquoted; a result that cannot be parsed is dropped
 * (never counted as a pass), results beyond AUTHRES_RESULTS_MAX are
 * ignored. 0 when an authserv-id was found, -1 when the value is unusable
 * (empty, too long, no authserv-id, a NUL byte).
 */
int authres_parse(const char *value, size_t len, struct authres *out);

/*
 * Whether domains A and B are aligned in the simple sense used here: equal
 * (case-insensitive), or one a subdomain of the other that has at least
 * two labels ("mail.example.com" and "example.com", never "example.com" and
 * "com"). Empty or NULL never aligns.
 */
bool authres_aligned(const char *a, const char *b);

/* How the From: address came to count as authentic. */
enum authres_sender {
	AUTHRES_SENDER_NONE = 0,   /* nothing vouches for it */
	AUTHRES_SENDER_ALIGNED,    /* From: domain aligned with MAIL FROM's */
	AUTHRES_SENDER_SPF,        /* trusted spf=pass, smtp.mailfrom aligned */
	AUTHRES_SENDER_DKIM,       /* trusted dkim=pass, header.d aligned */
	AUTHRES_SENDER_DMARC       /* trusted dmarc=pass for the From: domain */
};

/*
 * The strongest reason to believe FROM_DOMAIN (the From: address's domain):
 * N parsed headers RES, of which only those whose authserv-id is one of
 * the N_IDS names in IDS count; ENV_DOMAIN is the envelope sender's domain
 * (NULL or "" for the null sender).
 */
enum authres_sender authres_sender(const char *from_domain,
    const char *env_domain, const struct authres *res, size_t n,
    char *const *ids, size_t n_ids);

/* "none", "aligned", "spf", "dkim", "dmarc". */
const char *authres_sender_name(enum authres_sender s);

#endif
