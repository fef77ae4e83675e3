/*
 * fuzz_web_params.c - libFuzzer target for what the web server reads from a
 * request before anyone is signed in: the input is split at '\n' into a
 * form body, a Cookie header, a Content-Length value, a client address, an
 * Origin URL and a network list (admin_networks). Each goes through its
 * parser (web_form_get, web_cookie_get, web_body_check, web_client_key,
 * web_origin, conf_net_parse, the code and state hashes, the CSRF compare,
 * the HTML escaper); promises about outputs are checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "crypto.h"
#include "web_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_FIELDS 6

/* OUT must be a terminated string of at most OUTSZ - 1 bytes. */
static void
fz_check_str(const char *out, size_t outsz)
{
	if (memchr(out, '\0', outsz) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "code", "csrf", "password",
	    "agent", "tenant", "action" };
	static const char hash_key[65] =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	char *buf, *f[FZ_FIELDS], out[256], hash[65], *origin, *page;
	struct conf_net net;
	struct web_buf b = { 0 };
	size_t i, k = 0, len;
	int check;

	if (size > 8192)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	f[k++] = buf;
	for (i = 0; i < size && k < FZ_FIELDS; i++)
		if (buf[i] == '\n') {
			buf[i] = '\0';
			f[k++] = buf + i + 1;
		}
	while (k < FZ_FIELDS)
		f[k++] = buf + size;

	/* the form body (its real length: NULs inside are the parser's job) */
	len = strlen(f[0]);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(out, 0x55, sizeof(out));
		if (web_form_get(f[0], len, names[i], out, sizeof(out))) {
			fz_check_str(out, sizeof(out));
			for (k = 0; out[k] != '\0'; k++)
				if ((unsigned char)out[k] < 0x20 && out[k] != '\t')
					abort();    /* no control characters */
		}
		if (web_form_get(f[0], len, names[i], out, 4))
			fz_check_str(out, 4);
	}
	if (web_form_get(f[0], len, "code", out, sizeof(out)) &&
	    enroll_code_hash(hash_key, out, hash) == 0 && strlen(hash) != 64)
		abort();
	/* the Cookie header */
	for (i = 0; i < 3; i++) {
		static const char *const cookies[] = { "__Host-halo_enroll",
		    "halo_admin", "__Host-halo_admin" };
		if (web_cookie_get(f[1], cookies[i], out, sizeof(out))) {
			fz_check_str(out, sizeof(out));
			if (out[0] == '\0')
				abort();
			(void)enroll_state_hash(hash_key, out, hash);
			(void)web_admin_csrf_ok(out, f[0]);
		}
	}
	/* Content-Length */
	check = web_body_check(f[2][0] != '\0' ? f[2] : NULL, WEB_POST_MAX);
	if (check != 0 && check != 400 && check != 413)
		abort();
	/* a client address */
	web_client_key(f[3], out, sizeof(out));
	fz_check_str(out, sizeof(out));
	/* an Origin or public_url */
	origin = web_origin(f[4]);
	if (origin != NULL) {
		if (strstr(origin, "://") == NULL || strpbrk(origin, " ;'\",") != NULL)
			abort();    /* it goes into a CSP header */
		free(origin);
	}
	/* admin_networks */
	if (conf_net_parse(f[5], &net) == 0 &&
	    ((net.family == AF_INET && net.prefix > 32) || net.prefix > 128))
		abort();
	/* whatever came in, escaped for a page */
	web_buf_escape(&b, f[0]);
	page = web_buf_take(&b, &len);
	if (page != NULL) {
		if (strpbrk(page, "<>\"'") != NULL)
			abort();
		free(page);
	}
	web_buf_clear(&b);
	free(buf);
	return 0;
}
