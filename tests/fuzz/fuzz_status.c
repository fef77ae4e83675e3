/*
 * fuzz_status.c - libFuzzer target for the status API's handling of
 * untrusted request parameters (status.c): the input is split at its first
 * two '\n' into tenant, Message-ID and token, each given with its length
 * (NULs included), checked by status_params_ok(), and, when accepted, run
 * through the token check and a status answer built from it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[CRYPTO_KEY_LEN] = { 1, 2, 3 };
	const char *p[3];
	size_t len[3], start = 0, i, f = 0;
	char *buf, tok[STATUS_TOKEN_LEN + 1], *json;
	struct store_job job;
	cJSON *parsed;

	if (size > 4096)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (i = 0; i <= size && f < 3; i++)
		if (i == size || (buf[i] == '\n' && f < 2)) {
			p[f] = buf + start;
			len[f++] = i - start;
			if (i < size)
				buf[i] = '\0';
			start = i + 1;
		}
	while (f < 3) {
		p[f] = "";
		len[f++] = 0;
	}
	if (status_params_ok(p[0], len[0], p[1], len[1], p[2], len[2])) {
		/* accepted: exactly what the API then reads and compares */
		if (strlen(p[2]) > STATUS_TOKEN_LEN || p[1][0] != '<' ||
		    status_token_job(p[2]) <= 0)
			abort();
		memset(&job, 0, sizeof(job));
		job.id = status_token_job(p[2]);
		job.tenant = (char *)p[0];
		job.message_id = (char *)p[1];
		job.recipients = (char *)p[2];
		(void)status_token_check(key, &job, p[0], p[1], p[2]);
		if (status_token(key, p[0], job.id, p[1], p[2], tok) != 0 ||
		    !status_token_check(key, &job, p[0], p[1], tok) ||
		    status_token_job(tok) != job.id)
			abort();
		memset(&job, 0, sizeof(job));
		job.tenant = (char *)p[0];
		job.message_id = (char *)p[1];
		job.subject = (char *)p[2];
		job.reason = (char *)p[2];
		job.state = (enum store_state)(len[2] % 6);
		job.ticket_id = (int64_t)len[1];
		json = status_json(&job, p[0]);
		if (json == NULL || (parsed = cJSON_Parse(json)) == NULL)
			abort();
		cJSON_Delete(parsed);
		free(json);
	}
	free(buf);
	return 0;
}
