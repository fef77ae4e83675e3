/*
 * authres.c - Authentication-Results parsing and the From: authenticity
 * decision (see authres.h).
 *
 * RFC 8601, section 2.2, reduced to what is needed:
 *   payload  = [CFWS] authserv-id [CFWS version] (";" "none" / 1*resinfo)
 *   resinfo  = ";" method ["/" version] "=" result
 *              [reason "=" value] *(ptype "." property "=" pvalue)
 * with comments "(...)" (nested, quoted-pairs) anywhere between tokens and
 * values that are tokens or quoted strings. Every read is bounded by the
 * input length; copies are bounded by their buffers.
 */
#include "authres.h"

#include <string.h>
#include <strings.h>

#define AUTHRES_TOKEN_MAX    512    /* longest token or quoted string kept */

enum authres_tok {
	TOK_END,
	TOK_ATOM,           /* a run of other characters */
	TOK_QSTR,           /* a quoted string, unquoted */
	TOK_SEMI,
	TOK_EQ,
	TOK_BAD             /* an unterminated quoted string */
};

struct authres_lex {
	const char *p, *end;
	char text[AUTHRES_TOKEN_MAX + 1];   /* the token's text */
	size_t len;
	bool long_token;    /* the token was cut to fit */
};

/* Skip white space, line folds and (nested) comments. */
static void
authres_skip_cfws(struct authres_lex *l)
{
	unsigned depth = 0;

	while (l->p < l->end) {
		char c = *l->p;
		if (depth > 0) {
			if (c == '\\' && l->p + 1 < l->end)
				l->p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			l->p++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			l->p++;
		} else if (c == '(') {
			depth = 1;
			l->p++;
		} else {
			return;
		}
	}
}

/* Append C to the token text, within its bound. */
static void
authres_put(struct authres_lex *l, char c)
{
	if (l->len < AUTHRES_TOKEN_MAX)
		l->text[l->len++] = c;
	else
		l->long_token = true;
	l->text[l->len] = '\0';
}

/* The next token. */
static enum authres_tok
authres_next(struct authres_lex *l)
{
	char c;

	l->len = 0;
	l->text[0] = '\0';
	l->long_token = false;
	authres_skip_cfws(l);
	if (l->p >= l->end)
		return TOK_END;
	c = *l->p;
	if (c == ';' || c == '=') {
		l->p++;
		return c == ';' ? TOK_SEMI : TOK_EQ;
	}
	if (c == '"') {
		for (l->p++; l->p < l->end; l->p++) {
			c = *l->p;
			if (c == '"') {
				l->p++;
				return TOK_QSTR;
			}
			if (c == '\\' && l->p + 1 < l->end)
				c = *++l->p;
			if (c == '\r' || c == '\n')
				continue;       /* a fold inside the string */
			authres_put(l, c);
		}
		return TOK_BAD;
	}
	while (l->p < l->end) {
		c = *l->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '(' ||
		    c == ';' || c == '=' || c == '"')
			break;
		authres_put(l, c);
		l->p++;
	}
	return TOK_ATOM;
}

/* Lower-case S in place. */
static void
authres_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* The domain of VALUE ("local@domain", "@domain" or "domain") into OUT,
 * lower case, without a trailing dot; "" when it is not a plausible
 * domain name. */
static void
authres_domain(const char *value, char out[AUTHRES_DOMAIN_MAX + 1])
{
	const char *at = strrchr(value, '@'), *d = at ? at + 1 : value;
	size_t n = strlen(d), i;

	out[0] = '\0';
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > AUTHRES_DOMAIN_MAX || d[0] == '.')
		return;
	for (i = 0; i < n; i++) {
		char c = d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return;
		if (c == '.' && i + 1 < n && d[i + 1] == '.')
			return;
	}
	memcpy(out, d, n);
	out[n] = '\0';
	authres_lower(out);
}

/* The method named by TEXT ("dkim", "dkim/1", ...). */
static enum authres_method
authres_method_of(const char *text)
{
	size_t n = strcspn(text, "/");

	if (n == 5 && strncasecmp(text, "dmarc", 5) == 0)
		return AUTHRES_DMARC;
	if (n == 4 && strncasecmp(text, "dkim", 4) == 0)
		return AUTHRES_DKIM;
	if (n == 3 && strncasecmp(text, "spf", 3) == 0)
		return AUTHRES_SPF;
	return AUTHRES_OTHER;
}

/* Skip to the next ';' (or the end); returns that token. */
static enum authres_tok
authres_skip_resinfo(struct authres_lex *l, enum authres_tok tok)
{
	while (tok != TOK_SEMI && tok != TOK_END && tok != TOK_BAD)
		tok = authres_next(l);
	return tok;
}

/*
 * One resinfo after its ';': fills R and returns true when it parsed
 * cleanly; *TOK is left on the token that ends it (';' or the end).
 */
static bool
authres_resinfo(struct authres_lex *l, struct authres_result *r,
    enum authres_tok *tok)
{
	char prop[AUTHRES_TOKEN_MAX + 1], value[AUTHRES_TOKEN_MAX + 1];
	char domain[AUTHRES_DOMAIN_MAX + 1];
	bool have_d = false, ok = true;
	enum authres_tok t;

	memset(r, 0, sizeof(*r));
	t = authres_next(l);
	if (t != TOK_ATOM || l->long_token) {
		*tok = authres_skip_resinfo(l, t == TOK_ATOM ? authres_next(l) : t);
		return false;
	}
	r->method = authres_method_of(l->text);
	if (strcasecmp(l->text, "none") == 0) {
		/* "; none": no results */
		*tok = authres_skip_resinfo(l, authres_next(l));
		return false;
	}
	if ((t = authres_next(l)) != TOK_EQ || (t = authres_next(l)) != TOK_ATOM ||
	    l->long_token) {
		*tok = authres_skip_resinfo(l, t == TOK_ATOM ? authres_next(l) : t);
		return false;
	}
	r->pass = strcasecmp(l->text, "pass") == 0;
	/* reason and properties */
	for (t = authres_next(l); t == TOK_ATOM; t = authres_next(l)) {
		if (l->long_token) {
			ok = false;
			break;
		}
		memcpy(prop, l->text, l->len + 1);
		authres_lower(prop);
		if ((t = authres_next(l)) != TOK_EQ) {
			ok = false;
			break;
		}
		t = authres_next(l);
		if ((t != TOK_ATOM && t != TOK_QSTR) || l->long_token) {
			ok = false;
			if (t == TOK_ATOM || t == TOK_QSTR)
				t = authres_next(l);
			break;
		}
		memcpy(value, l->text, l->len + 1);
		/* "quoted local part"@domain: the domain follows at once */
		if (t == TOK_QSTR && l->p < l->end && *l->p == '@') {
			if ((t = authres_next(l)) != TOK_ATOM || l->long_token) {
				ok = false;
				break;
			}
			memcpy(value, l->text, l->len + 1);
		}
		if (strcmp(prop, "reason") == 0)
			continue;
		authres_domain(value, domain);
		if (r->method == AUTHRES_DMARC && strcmp(prop, "header.from") == 0) {
			memcpy(r->domain, domain, sizeof(domain));
		} else if (r->method == AUTHRES_DKIM &&
		    strcmp(prop, "header.d") == 0) {
			memcpy(r->domain, domain, sizeof(domain));
			have_d = true;
		} else if (r->method == AUTHRES_DKIM && !have_d &&
		    strcmp(prop, "header.i") == 0) {
			memcpy(r->domain, domain, sizeof(domain));
		} else if (r->method == AUTHRES_SPF &&
		    strcmp(prop, "smtp.mailfrom") == 0) {
			memcpy(r->domain, domain, sizeof(domain));
		}
	}
	if (!ok || (t != TOK_SEMI && t != TOK_END)) {
		if (t == TOK_BAD)
			t = TOK_END;
		*tok = authres_skip_resinfo(l, t);
		return false;
	}
	*tok = t;
	return true;
}

/* Parse one header value (see authres.h). */
int
authres_parse(const char *value, size_t len, struct authres *out)
{
	struct authres_lex l;
	struct authres_result r;
	enum authres_tok t;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (value == NULL || len == 0 || len > AUTHRES_INPUT_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (value[i] == '\0')
			return -1;
	memset(&l, 0, sizeof(l));
	l.p = value;
	l.end = value + len;
	t = authres_next(&l);
	if ((t != TOK_ATOM && t != TOK_QSTR) || l.len == 0 || l.long_token ||
	    l.len > AUTHRES_ID_MAX)
		return -1;
	memcpy(out->authserv_id, l.text, l.len + 1);
	authres_lower(out->authserv_id);
	t = authres_next(&l);
	if (t == TOK_ATOM && l.len > 0 && strspn(l.text, "0123456789") == l.len)
		t = authres_next(&l);       /* the version */
	t = authres_skip_resinfo(&l, t);
	while (t == TOK_SEMI) {
		if (!authres_resinfo(&l, &r, &t))
			continue;
		if (out->n_results < AUTHRES_RESULTS_MAX)
			out->results[out->n_results++] = r;
	}
	return 0;
}

/* Are domains A and B aligned (equal, or one a subdomain of the other)? */
bool
authres_aligned(const char *a, const char *b)
{
	const char *shorter, *longer;
	size_t ls, ll;

	if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
		return false;
	if (strcasecmp(a, b) == 0)
		return true;
	ls = strlen(a);
	ll = strlen(b);
	shorter = ls < ll ? a : b;
	longer = ls < ll ? b : a;
	if (ls > ll) {
		size_t tmp = ls;
		ls = ll;
		ll = tmp;
	}
	if (strchr(shorter, '.') == NULL || ll <= ls + 1)
		return false;
	return longer[ll - ls - 1] == '.' &&
	    strcasecmp(longer + ll - ls, shorter) == 0;
}

/* Is ID one of the operator's trusted authserv-ids? */
static bool
authres_trusted(const char *id, char *const *ids, size_t n_ids)
{
	size_t i;

	for (i = 0; i < n_ids; i++)
		if (ids[i] != NULL && strcasecmp(ids[i], id) == 0)
			return true;
	return false;
}

/* The strongest reason to believe the From: domain (see authres.h). */
enum authres_sender
authres_sender(const char *from_domain, const char *env_domain,
    const struct authres *res, size_t n, char *const *ids, size_t n_ids)
{
	enum authres_sender best = AUTHRES_SENDER_NONE, s;
	size_t i, k;

	if (from_domain == NULL || *from_domain == '\0')
		return AUTHRES_SENDER_NONE;
	if (authres_aligned(from_domain, env_domain))
		best = AUTHRES_SENDER_ALIGNED;
	for (i = 0; i < n; i++) {
		if (!authres_trusted(res[i].authserv_id, ids, n_ids))
			continue;
		for (k = 0; k < res[i].n_results; k++) {
			const struct authres_result *r = &res[i].results[k];
			s = AUTHRES_SENDER_NONE;
			if (!r->pass)
				continue;
			if (r->method == AUTHRES_DMARC &&
			    strcasecmp(r->domain, from_domain) == 0)
				s = AUTHRES_SENDER_DMARC;
			else if (r->method == AUTHRES_DKIM &&
			    authres_aligned(r->domain, from_domain))
				s = AUTHRES_SENDER_DKIM;
			else if (r->method == AUTHRES_SPF &&
			    authres_aligned(r->domain, from_domain))
				s = AUTHRES_SENDER_SPF;
			if (s > best)
				best = s;
		}
	}
	return best;
}

/* The stored name of S. */
const char *
authres_sender_name(enum authres_sender s)
{
	switch (s) {
	case AUTHRES_SENDER_ALIGNED:
		return "aligned";
	case AUTHRES_SENDER_SPF:
		return "spf";
	case AUTHRES_SENDER_DKIM:
		return "dkim";
	case AUTHRES_SENDER_DMARC:
		return "dmarc";
	default:
		return "none";
	}
}
