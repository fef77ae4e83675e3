/*
 * fuzz_authres.c - libFuzzer target for the Authentication-Results parser
 * (authres.c): the input is one header value, parsed, then run through the
 * From: authenticity decision with the parsed authserv-id trusted, so every
 * kept result reaches the alignment checks. Checks the parser's promises:
 * bounded, NUL-terminated fields and at most AUTHRES_RESULTS_MAX results.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authres res;
	char *ids[1];
	size_t i;

	if (authres_parse((const char *)data, size, &res) != 0)
		return 0;
	if (res.n_results > AUTHRES_RESULTS_MAX ||
	    strlen(res.authserv_id) > AUTHRES_ID_MAX || res.authserv_id[0] == '\0')
		abort();
	for (i = 0; i < res.n_results; i++) {
		if (strlen(res.results[i].domain) > AUTHRES_DOMAIN_MAX)
			abort();
		(void)authres_aligned(res.results[i].domain, "example.com");
	}
	ids[0] = res.authserv_id;
	(void)authres_sender_name(authres_sender("example.com", "mail.example.com",
	    &res, 1, ids, 1));
	return 0;
}
