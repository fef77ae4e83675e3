/*
 * corpus-intake.c - push raw messages through the intake path (no MTA).
 *
 *   corpus-intake FILE...
 *
 * Each file is split into headers and body the way an MTA hands them to a
 * milter (unfolded names, values with continuation lines, body in 64 KB
 * chunks), routed to an intake mailbox and run to end of message against a
 * real store and spool in a temporary state directory. Exits non-zero when
 * a message does not end in a job or a recorded skip. Crashes, leaks and
 * hangs are for the sanitizers and the caller's timeout to catch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "intake.h"
#include "spool.h"
#include "statedir.h"
#include "store.h"

#define CORPUS_HEADER_MAX (256 * 1024)   /* one header, as Postfix bounds it */
#define CORPUS_CHUNK      65536

/* Feed one header "Name: value" (without the final newline) to intake. */
static void
corpus_header(struct intake_msg *msg, char *line)
{
	char *colon = strchr(line, ':'), *value;

	if (colon == NULL)
		return;
	*colon = '\0';
	value = colon + 1;
	if (*value == ' ')
		value++;
	intake_msg_header(msg, line, value);
}

/* Run one file through intake; 0 when it ends in a job or a skip. */
static int
corpus_one(struct intake *in, const char *path, int seq)
{
	FILE *fp = fopen(path, "rb");
	struct intake_msg *msg;
	char *hdr, *line = NULL, qid[32];
	size_t hlen = 0, cap = 0;
	ssize_t n;
	int rc = 0;
	char buf[CORPUS_CHUNK];
	size_t got;

	if (fp == NULL) {
		perror(path);
		return 1;
	}
	hdr = malloc(CORPUS_HEADER_MAX + 1);
	msg = intake_msg_new(in);
	if (hdr == NULL || msg == NULL) {
		fclose(fp);
		free(hdr);
		intake_msg_free(msg);
		return 1;
	}
	snprintf(qid, sizeof(qid), "CORPUS%d", seq);
	intake_msg_queue_id(msg, qid);
	intake_msg_envfrom(msg, "<sender@corpus.example>");
	intake_msg_rcpt(msg, "<support@acme.example>");
	/* header block: unfold continuation lines into the current header */
	while ((n = getline(&line, &cap, fp)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			break;
		if ((line[0] == ' ' || line[0] == '\t') && hlen > 0) {
			if (hlen + 1 + (size_t)n <= CORPUS_HEADER_MAX) {
				hdr[hlen++] = '\n';
				memcpy(hdr + hlen, line, (size_t)n);
				hlen += (size_t)n;
			}
			continue;
		}
		if (hlen > 0) {
			hdr[hlen] = '\0';
			corpus_header(msg, hdr);
		}
		if (strchr(line, ':') == NULL) {
			/* not a header: the body starts here, as in Postfix */
			hlen = 0;
			intake_msg_eoh(msg);
			intake_msg_body(msg, line, (size_t)n);
			intake_msg_body(msg, "\r\n", 2);
			goto body;
		}
		hlen = (size_t)n < CORPUS_HEADER_MAX ? (size_t)n : CORPUS_HEADER_MAX;
		memcpy(hdr, line, hlen);
	}
	if (hlen > 0) {
		hdr[hlen] = '\0';
		corpus_header(msg, hdr);
	}
	intake_msg_eoh(msg);
body:
	while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
		intake_msg_body(msg, buf, got);
	if (intake_msg_eom(msg) != INTAKE_CONTINUE) {
		fprintf(stderr, "%s: intake asked for a temporary failure\n", path);
		rc = 1;
	} else {
		const struct intake_edit *edits;
		size_t ne = intake_msg_edits(msg, &edits), i;
		int stamped = 0;
		for (i = 0; i < ne; i++)
			if (edits[i].op == INTAKE_EDIT_ADD &&
			    strcmp(edits[i].name, "X-Halo-Status") == 0) {
				stamped = 1;
				printf("%s: %s\n", path, edits[i].value);
			}
		if (!stamped) {
			fprintf(stderr, "%s: no X-Halo-Status stamped\n", path);
			rc = 1;
		}
	}
	free(line);
	free(hdr);
	intake_msg_free(msg);
	fclose(fp);
	return rc;
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/halo-corpus.XXXXXX", path[512];
	char err[256];
	struct statedir sd;
	uint8_t key[CRYPTO_KEY_LEN];
	struct conf *conf;
	struct store *st;
	struct intake *in;
	FILE *fp;
	int i, nerr = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: corpus-intake FILE...\n");
		return 2;
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/corpus.conf", dir);
	fp = fopen(path, "w");
	if (fp == NULL) {
		perror(path);
		return 1;
	}
	fprintf(fp, "socket = unix:%s/sock\nstate_dir = %s\n"
	    "max_message_size = 20M\n"
	    "[tenant acme]\nhalo_url = http://127.0.0.1:9\nclient_id = c\n"
	    "ticket_type_id = 1\nloop_max_creates = 100000\n"
	    "route = support@acme.example intake agent=a@msp.example\n",
	    dir, dir);
	fclose(fp);
	conf = conf_load(path, stderr, &nerr);
	if (statedir_init(&sd, dir, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "set-up failed: %s\n", err);
		return 1;
	}
	st = conf ? store_open(sd.store, err, sizeof(err)) : NULL;
	if (conf == NULL || st == NULL || spool_init(sd.spool) != 0) {
		fprintf(stderr, "set-up failed: %s\n", st ? "spool" : err);
		return 1;
	}
	if (crypto_key_load_or_create(sd.status_key, key, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "status key: %s\n", err);
		return 1;
	}
	in = intake_new(conf, st, sd.spool, "corpus.test", key);
	crypto_wipe(key, sizeof(key));
	for (i = 1; i < argc; i++)
		failed += corpus_one(in, argv[i], i) != 0;
	intake_free(in);
	store_close(st);
	conf_free(conf);
	printf("corpus: %d passed, %d failed\n", argc - 1 - failed, failed);
	if (failed == 0) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return failed != 0;
}
