/*
 * halo-milterctl.c - the operator's CLI.
 *
 *   halo-milterctl [-c FILE] queue [-s STATE] [-n LIMIT]   list jobs
 *   halo-milterctl [-c FILE] show ID|QUEUEID|MESSAGEID [--json]
 *                                                        one job + headers
 *   halo-milterctl [-c FILE] stats [--json]               jobs per state
 *   halo-milterctl [-c FILE] retry ID                     re-queue a job
 *   halo-milterctl [-c FILE] token import AGENT [TENANT]  refresh token on stdin
 *   halo-milterctl [-c FILE] doctor [TENANT] [--json]     check Halo set-up
 *   halo-milterctl [-c FILE] enroll AGENT [TENANT]        one-time code + link
 *   halo-milterctl [-c FILE] agents [--json]              agents and standing
 *   halo-milterctl [-c FILE] revoke AGENT [TENANT]        delete a token
 *   halo-milterctl [-c FILE] admin-password               set /admin's password
 *   halo-milterctl [-c FILE] keys rotate [--force]        new sealing key
 *   halo-milterctl [-c FILE] manifest --format xml|json [--tenant T]
 *                                                        Outlook add-in manifest
 *   halo-milterctl [-c FILE] store migrate [--from FILE] [TARGET]
 *                                                        SQLite -> PostgreSQL
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <strings.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agents.h"
#include "conf.h"
#include "crypto.h"
#include "doctor.h"
#include "halo.h"
#include "hdr.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "oauth.h"
#include "spool.h"
#include "statedir.h"
#include "store.h"
#include "util.h"
#include "worker.h"
#include "enroll.h"

#define DEFAULT_CONF "/etc/halo-milter/halo-milter.conf"

/* The state files of the configuration loaded (statedir.h), set by main. */
static struct statedir ctl_sd;
#define CTL_HEADER_MAX (256 * 1024)   /* header block shown by "show" */
#define CTL_HEADER_LINE 4096          /* read at once (longer lines: pieces) */
#define CTL_HEADER_BUF (CTL_HEADER_MAX + CTL_HEADER_LINE)  /* the last line
                                         read may cross CTL_HEADER_MAX */
#define CTL_QUEUE_LIMIT 50            /* "queue" rows without -n, on a tty */
#define CTL_SHOW_MATCHES 20           /* jobs "show" lists when several match */

/* Print usage to OUT and exit with STATUS. */
static void __attribute__((noreturn))
ctl_usage(FILE *out, int status)
{
	fprintf(out, "usage: halo-milterctl [-c config] command [args]\n"
	    "       halo-milterctl -h | --help\n"
	    "commands:\n"
	    "  queue [-s STATE] [-n LIMIT] [-t TENANT] [-q QUEUEID] [-m MESSAGEID]\n"
	    "        [--json]               list jobs, newest first (LIMIT: 0 = all;\n"
	    "                               default 50 on a terminal, else all)\n"
	    "  show ID|QUEUEID|MESSAGEID [--json]\n"
	    "                               one job and its message headers (a\n"
	    "                               number is a job id; else a queue ID,\n"
	    "                               then a Message-ID; exit 3 when several\n"
	    "                               jobs match)\n"
	    "  stats [--json]               number of jobs per state\n"
	    "  retry ID                     queue a failed, skipped or waiting job again\n"
	    "                               (not a done one)\n"
	    "  token import AGENT [TENANT]  store AGENT's Halo refresh token, read\n"
	    "                               from standard input (sealed at rest)\n"
	    "  doctor [TENANT] [--json]     check each tenant's Halo set-up: agents'\n"
	    "                               tokens, ticket type, outcomes, budget\n"
	    "  enroll AGENT [TENANT]        a one-time code (10 minutes) and the link\n"
	    "                               AGENT opens to connect their Halo account\n"
	    "  agents [--json]              agents and their standing (enrolled,\n"
	    "                               re-enroll needed, pending code, ...)\n"
	    "  revoke AGENT [TENANT]        delete AGENT's token; their jobs wait\n"
	    "  admin-password               set the password of the admin page\n"
	    "                               (PUBLIC_URL/admin), read from stdin\n"
	    "  keys rotate [--force]        re-seal every token under a new sealing\n"
	    "                               key (stop the daemon first)\n"
	    "  store migrate [--from FILE] [TARGET]\n"
	    "                               copy the SQLite store (FILE; default\n"
	    "                               STATE_DIR/halo-milter.db) into the empty\n"
	    "                               PostgreSQL store TARGET (default: store =)\n"
	    "  manifest --format xml|json [--tenant T]\n"
	    "                               the Outlook add-in manifest of this\n"
	    "                               deployment (URLs from public_url)\n"
	    "states: queued skipped running done failed waiting\n"
	    "exit status: 0 ok, 1 failed (doctor: problems found), 2 wrong command\n"
	    "line, 3 several jobs match (show)\n"
	    "See halo-milterctl(8).\n");
	exit(status);
}

/* Print usage to standard error and exit 2 (a wrong command line). */
static void __attribute__((noreturn))
usage(void)
{
	ctl_usage(stderr, 2);
}

/* "3m", "2h", "5d": a short age for the queue listing. */
static void
ctl_age(time_t since, char *out, size_t outsz)
{
	long s = (long)(time(NULL) - since);

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, outsz, "%lds", s);
	else if (s < 7200)
		snprintf(out, outsz, "%ldm", s / 60);
	else if (s < 172800)
		snprintf(out, outsz, "%ldh", s / 3600);
	else
		snprintf(out, outsz, "%ldd", s / 86400);
}

/* What "queue" shows: filters, limit, and the JSON array when --json. */
struct ctl_queue_opts {
	const char *tenant, *queue_id, *message_id;  /* NULL = any */
	unsigned limit, shown;     /* limit 0 = all */
	cJSON *json;               /* the array being filled, or NULL */
};

/* A string member, or JSON null for NULL. */
static void
ctl_json_str(cJSON *obj, const char *name, const char *value)
{
	if (value != NULL)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
}

/* A job as JSON: the fields of "queue --json" (and the start of
 * "show --json"); NULL when out of memory. */
static cJSON *
ctl_job_json(const struct store_job *j)
{
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL)
		return NULL;
	cJSON_AddNumberToObject(obj, "id", (double)j->id);
	cJSON_AddStringToObject(obj, "state", store_state_name(j->state));
	cJSON_AddNumberToObject(obj, "created", (double)j->created);
	cJSON_AddNumberToObject(obj, "updated", (double)j->updated);
	ctl_json_str(obj, "tenant", j->tenant);
	ctl_json_str(obj, "reason", j->reason);
	ctl_json_str(obj, "from", j->from_addr);
	ctl_json_str(obj, "message_id", j->message_id);
	ctl_json_str(obj, "queue_id", j->queue_id);
	cJSON_AddNumberToObject(obj, "attempts", j->attempts);
	ctl_json_str(obj, "result", j->result);
	if (j->ticket_id != 0)
		cJSON_AddNumberToObject(obj, "ticket_id", (double)j->ticket_id);
	else
		cJSON_AddNullToObject(obj, "ticket_id");
	return obj;
}

/* One row of "queue". */
static void
ctl_queue_row(const struct store_job *j, void *arg)
{
	struct ctl_queue_opts *o = arg;
	char age[24], msgid[61], from[41], reason[33];
	cJSON *obj;

	if ((o->tenant != NULL && (j->tenant == NULL ||
	    strcmp(j->tenant, o->tenant) != 0)) ||
	    (o->queue_id != NULL && (j->queue_id == NULL ||
	    strcmp(j->queue_id, o->queue_id) != 0)) ||
	    (o->message_id != NULL && (j->message_id == NULL ||
	    strcmp(j->message_id, o->message_id) != 0)))
		return;
	if (o->limit != 0 && o->shown >= o->limit)
		return;
	o->shown++;
	if (o->json != NULL) {
		if ((obj = ctl_job_json(j)) != NULL)
			cJSON_AddItemToArray(o->json, obj);
		return;
	}
	ctl_age(j->created, age, sizeof(age));
	log_safe(j->message_id, msgid, sizeof(msgid));
	log_safe(j->from_addr, from, sizeof(from));
	log_safe(j->reason ? j->reason : "-", reason, sizeof(reason));
	printf("%-6" PRId64 " %-8s %-5s %-12s %-18s %-40s %s\n", j->id,
	    store_state_name(j->state), age, j->tenant, reason, from, msgid);
}

/* Print JSON (and free it); 0, or 1 when it could not be written. */
static int
ctl_json_print(cJSON *json)
{
	char *text = json != NULL ? cJSON_Print(json) : NULL;
	int rc = 1;

	if (text != NULL && puts(text) >= 0 && fflush(stdout) == 0)
		rc = 0;
	free(text);
	cJSON_Delete(json);
	return rc;
}

/* Remove "--json" from ARGV (ARGC updated); whether it was there. */
static bool
ctl_take_json(int *argc, char **argv)
{
	bool found = false;
	int i, j;

	for (i = j = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			found = true;
		else
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argc = j;
	return found;
}

/* "queue": list jobs. */
static int
ctl_queue(struct store *st, int argc, char **argv)
{
	struct ctl_queue_opts o;
	int ch, state = -1;
	unsigned long n;
	char *end;
	bool json = ctl_take_json(&argc, argv);

	memset(&o, 0, sizeof(o));
	/* a terminal gets the newest CTL_QUEUE_LIMIT; scripts reading a
	 * pipe get every job unless they ask for fewer */
	o.limit = isatty(STDOUT_FILENO) ? CTL_QUEUE_LIMIT : 0;
	optind = 1;
	while ((ch = getopt(argc, argv, "s:n:t:q:m:")) != -1) {
		switch (ch) {
		case 's':
			state = store_state_parse(optarg);
			if (state < 0) {
				fprintf(stderr, "unknown state '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    optarg[0] == '-' || n > 1000000) {
				fprintf(stderr, "-n: '%s' is not a number from 0"
				    " (all) to 1000000\n", optarg);
				return 2;
			}
			o.limit = (unsigned)n;
			break;
		case 't': o.tenant = optarg; break;
		case 'q': o.queue_id = optarg; break;
		case 'm': o.message_id = optarg; break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (json && (o.json = cJSON_CreateArray()) == NULL)
		return 1;
	if (!json)
		printf("%-6s %-8s %-5s %-12s %-18s %-40s %s\n", "ID", "STATE",
		    "AGE", "TENANT", "REASON", "FROM", "MESSAGE-ID");
	/* with a filter the limit counts matching rows, so it is applied
	 * here rather than by the store */
	if (store_job_list(st, state, o.tenant || o.queue_id || o.message_id ?
	    0 : o.limit, ctl_queue_row, &o) != STORE_OK) {
		cJSON_Delete(o.json);
		return 1;
	}
	return json ? ctl_json_print(o.json) : 0;
}

/* The header block of spool file PATH into OUT (lines end in "\n", bytes
 * that are not UTF-8 become '?'), at most CTL_HEADER_MAX bytes read;
 * *TRUNCATED when cut there. 0, or an errno. */
static int
ctl_read_headers(const char *path, struct util_buf *out, bool *truncated)
{
	FILE *fp = fopen(path, "r");
	char line[CTL_HEADER_LINE];
	size_t total = 0, len, i, seq;

	*truncated = false;
	if (fp == NULL)
		return errno;
	while (total < CTL_HEADER_MAX && fgets(line, sizeof(line), fp) != NULL) {
		len = strlen(line);
		total += len;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			break;
		for (i = 0; i < len; i += seq)
			if ((seq = util_utf8_seq((unsigned char *)line + i,
			    len - i)) == 0) {
				line[i] = '?';
				seq = 1;
			}
		util_buf_add(out, line, len);
		util_buf_add(out, "\n", 1);
	}
	*truncated = total >= CTL_HEADER_MAX;
	fclose(fp);
	return out->oom ? ENOMEM : 0;
}

/* The spool file of job J, or false when it has none. */
static bool
ctl_spool_file(const struct store_job *j, char path[PATH_MAX])
{
	if (j->spool == NULL)
		return false;
	return spool_path(ctl_sd.spool, j->spool, path, PATH_MAX) == 0;
}

/* Print the header block of a spool file, made safe for a terminal. */
static void
ctl_print_headers(const char *path)
{
	struct util_buf hdr = { .max = CTL_HEADER_BUF };
	char safe[4096], *line, *next;
	bool truncated;
	int rc;

	if ((rc = ctl_read_headers(path, &hdr, &truncated)) != 0) {
		printf("  (%s)\n", rc == ENOENT ? "message removed from the"
		    " spool once logged" : strerror(rc));
		util_buf_clear(&hdr);
		return;
	}
	for (line = hdr.s; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		/* keep the folding whitespace visible, mask control bytes */
		for (char *tab = line; (tab = strchr(tab, '\t')) != NULL; tab++)
			*tab = ' ';
		printf("  %s\n", log_safe(line, safe, sizeof(safe)));
	}
	if (truncated)
		printf("  (header block truncated at %d bytes)\n", CTL_HEADER_MAX);
	util_buf_clear(&hdr);
}

/* One "label value" line of "show", made safe for a terminal. */
static void
ctl_field(const char *label, const char *value)
{
	char safe[1024];

	printf("%-14s %s\n", label, log_safe(value ? value : "-", safe,
	    sizeof(safe)));
}

/* What "show" looks for: the argument, and the ids of the jobs found. */
struct ctl_find {
	const char *queue_id;       /* or NULL */
	const char *message_id;     /* as given, or NULL */
	char bracketed[HDR_MSGID_MAX + 3];  /* "<" MESSAGE_ID ">", or "" */
	int64_t ids[CTL_SHOW_MATCHES];
	size_t n;                   /* matches (may exceed the ids kept) */
};

/* store_job_list callback: a job whose queue ID or Message-ID matches. */
static void
ctl_find_job(const struct store_job *j, void *arg)
{
	struct ctl_find *f = arg;
	bool match;

	if (f->queue_id != NULL)
		match = j->queue_id != NULL && strcmp(j->queue_id, f->queue_id) == 0;
	else
		match = j->message_id != NULL &&
		    (strcmp(j->message_id, f->message_id) == 0 ||
		    (f->bracketed[0] != '\0' &&
		    strcmp(j->message_id, f->bracketed) == 0));
	if (!match)
		return;
	if (f->n < CTL_SHOW_MATCHES)
		f->ids[f->n] = j->id;
	f->n++;
}

/* The jobs whose queue ID, else whose Message-ID (with or without its
 * angle brackets), is ARG into F; -1 when the store could not be read. */
static int
ctl_find(struct store *st, const char *arg, struct ctl_find *f)
{
	size_t len = strlen(arg);

	memset(f, 0, sizeof(*f));
	f->queue_id = arg;
	if (store_job_list(st, -1, 0, ctl_find_job, f) != STORE_OK)
		return -1;
	if (f->n > 0)
		return 0;
	f->queue_id = NULL;
	f->message_id = arg;
	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
		snprintf(f->bracketed, sizeof(f->bracketed), "%.*s",
		    (int)(len - 2), arg + 1);   /* an old row stored without */
	else if (len + 2 < sizeof(f->bracketed))
		snprintf(f->bracketed, sizeof(f->bracketed), "<%s>", arg);
	return store_job_list(st, -1, 0, ctl_find_job, f) == STORE_OK ? 0 : -1;
}

/* Several jobs match ARG: list them briefly on standard error. */
static void
ctl_show_ambiguous(struct store *st, const char *arg, const struct ctl_find *f)
{
	struct store_job *j;
	char safe[128], from[64];
	size_t i;

	fprintf(stderr, "%zu jobs match '%s'; show one by its id:\n", f->n,
	    log_safe(arg, safe, sizeof(safe)));
	for (i = 0; i < f->n && i < CTL_SHOW_MATCHES; i++) {
		j = NULL;
		if (store_job_get(st, f->ids[i], &j) != STORE_OK || j == NULL)
			continue;
		fprintf(stderr, "  %-6" PRId64 " %-8s %-12s %s\n", j->id,
		    store_state_name(j->state), j->tenant,
		    log_safe(j->from_addr, from, sizeof(from)));
		store_job_free(j);
	}
	if (f->n > CTL_SHOW_MATCHES)
		fprintf(stderr, "  (and %zu more)\n", f->n - CTL_SHOW_MATCHES);
}

/* "show --json": the job's fields, the header block as one string. */
static int
ctl_show_json(const struct store_job *j)
{
	struct util_buf hdr = { .max = CTL_HEADER_BUF };
	char path[PATH_MAX];
	bool truncated = false;
	cJSON *obj = ctl_job_json(j);

	if (obj == NULL)
		return 1;
	ctl_json_str(obj, "env_from", j->env_from);
	ctl_json_str(obj, "subject", j->subject);
	ctl_json_str(obj, "recipients", j->recipients);
	ctl_json_str(obj, "mode", j->mode);
	ctl_json_str(obj, "agent", j->agent);
	ctl_json_str(obj, "sender_auth", j->sender_auth);
	ctl_json_str(obj, "outbound_auth", j->outbound_auth);
	ctl_json_str(obj, "conversation", j->conv_key);
	cJSON_AddBoolToObject(obj, "starts_thread", j->starts_thread);
	cJSON_AddBoolToObject(obj, "no_create", j->no_create);
	cJSON_AddBoolToObject(obj, "post_started", j->post_started);
	cJSON_AddNumberToObject(obj, "next_attempt", (double)j->next_attempt);
	if (j->action_id != 0)
		cJSON_AddNumberToObject(obj, "action_id", (double)j->action_id);
	else
		cJSON_AddNullToObject(obj, "action_id");
	ctl_json_str(obj, "ticket_status", j->ticket_status);
	ctl_json_str(obj, "contact", j->contact);
	ctl_json_str(obj, "client", j->client);
	ctl_json_str(obj, "spool", j->spool);
	cJSON_AddNumberToObject(obj, "size", (double)j->size);
	/* null once the message left the spool (it is on its ticket) */
	if (ctl_spool_file(j, path) &&
	    ctl_read_headers(path, &hdr, &truncated) == 0 && hdr.s != NULL)
		cJSON_AddStringToObject(obj, "headers", hdr.s);
	else
		cJSON_AddNullToObject(obj, "headers");
	cJSON_AddBoolToObject(obj, "headers_truncated", truncated);
	util_buf_clear(&hdr);
	return ctl_json_print(obj);
}

/* "show ID|QUEUEID|MESSAGEID [--json]": 0, 1 (no such job), 3 (several
 * match; listed on standard error). */
static int
ctl_show(struct store *st, const char *arg, bool json)
{
	struct store_job *j = NULL;
	struct ctl_find f;
	char *end, created[64], path[PATH_MAX], safe[128];
	long long id;
	struct tm tm;
	enum store_status rc;

	if (*arg == '\0') {
		fprintf(stderr, "show: name a job id, queue ID or Message-ID\n");
		return 2;
	}
	errno = 0;
	id = strtoll(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg || id <= 0)
		id = 0;
	/* a number is a job id; an all-digit queue ID is tried after it */
	rc = id > 0 ? store_job_get(st, id, &j) : STORE_NOT_FOUND;
	if (rc == STORE_NOT_FOUND) {
		if (ctl_find(st, arg, &f) != 0)
			return 1;
		if (f.n > 1) {
			ctl_show_ambiguous(st, arg, &f);
			return 3;
		}
		if (f.n == 0) {
			fprintf(stderr, "no job %s '%s'\n", id > 0 ? "with id,"
			    " queue ID or Message-ID" : "with queue ID or Message-ID",
			    log_safe(arg, safe, sizeof(safe)));
			return 1;
		}
		id = f.ids[0];
		rc = store_job_get(st, id, &j);
	}
	if (rc != STORE_OK || j == NULL) {
		fprintf(stderr, "cannot read job %lld\n", id);
		return 1;
	}
	if (json) {
		int out = ctl_show_json(j);

		store_job_free(j);
		return out;
	}
	gmtime_r(&j->created, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-14s %lld\n", "job", id);
	ctl_field("state", store_state_name(j->state));
	ctl_field("reason", j->reason);
	ctl_field("tenant", j->tenant);
	ctl_field("message-id", j->message_id);
	ctl_field("queue-id", j->queue_id);
	ctl_field("created", created);
	ctl_field("envelope-from", j->env_from);
	ctl_field("from", j->from_addr);
	ctl_field("subject", j->subject);
	ctl_field("recipients", j->recipients);
	ctl_field("mode", j->mode);
	ctl_field("agent", j->agent);
	ctl_field("sender-auth", j->sender_auth);
	ctl_field("outbound-auth", j->outbound_auth);
	ctl_field("conversation", j->conv_key);
	printf("%-14s %s\n", "starts-thread", j->starts_thread ? "yes" : "no");
	printf("%-14s %s\n", "no-create", j->no_create ? "yes" : "no");
	printf("%-14s %d\n", "attempts", j->attempts);
	/* a create/append went out: a retry rechecks Halo before posting */
	printf("%-14s %s\n", "post-started", j->post_started ? "yes" : "no");
	if (j->state == STORE_QUEUED && j->next_attempt > time(NULL))
		printf("%-14s in %lld s\n", "next-attempt",
		    (long long)(j->next_attempt - time(NULL)));
	if (j->ticket_id > 0)
		printf("%-14s %" PRId64 "\n", "ticket", j->ticket_id);
	if (j->action_id > 0)
		printf("%-14s %" PRId64 "\n", "action", j->action_id);
	ctl_field("result", j->result);
	ctl_field("ticket-status", j->ticket_status);
	ctl_field("contact", j->contact);
	ctl_field("client", j->client);
	ctl_field("spool", j->spool);
	printf("%-14s %" PRIu64 "\n", "size", j->size);
	if (ctl_spool_file(j, path)) {
		printf("headers:\n");
		ctl_print_headers(path);
	}
	store_job_free(j);
	return 0;
}

/* "retry ID". */
static int
ctl_retry(struct store *st, const char *idtext)
{
	char *end;
	long long id;
	enum store_status rc;

	errno = 0;
	id = strtoll(idtext, &end, 10);
	if (errno != 0 || *end != '\0' || id <= 0) {
		fprintf(stderr, "bad job id '%s'\n", idtext);
		return 2;
	}
	rc = store_job_requeue(st, id);
	if (rc == STORE_NOT_FOUND) {
		struct store_job *job = NULL;

		if (store_job_get(st, id, &job) != STORE_OK || job == NULL)
			fprintf(stderr, "no job %lld\n", id);
		else if (job->state == STORE_DONE)
			fprintf(stderr, "job %lld is done: its mail is on its Halo"
			    " ticket and its spooled message is gone; nothing to"
			    " retry\n", id);
		else
			fprintf(stderr, "job %lld is %s now; try again when it"
			    " has finished\n", id, store_state_name(job->state));
		store_job_free(job);
		return 1;
	}
	if (rc != STORE_OK)
		return 1;
	printf("job %lld queued\n", id);
	return 0;
}

/* AGENT lower-cased into OUT (321 bytes); false unless it looks like an
 * address (one '@', no space or control character, not too long). */
static bool
ctl_agent_address(const char *agent, char out[321])
{
	const char *at = strchr(agent, '@');
	size_t i;

	if (at == NULL || at == agent || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strlen(agent) > 320) {
		fprintf(stderr, "AGENT must be the agent's email address\n");
		return false;
	}
	for (i = 0; agent[i] != '\0'; i++) {
		if ((unsigned char)agent[i] <= ' ' || agent[i] == 0x7f) {
			fprintf(stderr, "AGENT must be the agent's email address\n");
			return false;
		}
		out[i] = (char)((agent[i] >= 'A' && agent[i] <= 'Z') ?
		    agent[i] + 32 : agent[i]);
	}
	out[i] = '\0';
	return true;
}

/* "token import AGENT [TENANT]": seal a refresh token read from stdin. */
static int
ctl_token_import(struct store *st, const struct conf *conf, const char *agent,
    const char *tenant)
{
	char err[1024], line[8192], lower[321];
	uint8_t key[CRYPTO_KEY_LEN];
	struct oauth *oa;
	struct stat sb;
	size_t len;
	int rc = 1;

	if (tenant == NULL) {
		if (conf->n_tenants != 1) {
			fprintf(stderr, "several tenants: name one\n");
			return 2;
		}
		tenant = conf->tenants[0]->name;
	}
	if (conf_tenant_find(conf, tenant) == NULL) {
		fprintf(stderr, "no tenant '%s' in %s\n", tenant, conf->path);
		return 2;
	}
	if (!ctl_agent_address(agent, lower))
		return 2;
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "paste the refresh token, then Enter:\n");
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "no token on standard input\n");
		return 1;
	}
	len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
	    line[len - 1] == ' '))
		line[--len] = '\0';
	if (len == 0) {
		fprintf(stderr, "empty token\n");
		return 1;
	}
	if (keys_load(&ctl_sd, st, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealing key: %s\n", err);
		crypto_wipe(line, sizeof(line));
		return 1;
	}
	/* a key made here must stay readable by the daemon's user */
	if (stat(conf->state_dir, &sb) == 0 &&
	    chown(ctl_sd.seal_key, sb.st_uid, sb.st_gid) != 0 && errno != EPERM)
		fprintf(stderr, "warning: cannot chown %s\n", ctl_sd.seal_key);
	oa = oauth_new(st, key);
	crypto_wipe(key, sizeof(key));
	if (oa != NULL && oauth_import(oa, tenant, lower, line) == 0) {
		printf("token stored for %s in tenant %s\n", lower, tenant);
		rc = 0;
	} else {
		fprintf(stderr, "cannot store the token\n");
	}
	crypto_wipe(line, sizeof(line));
	oauth_free(oa);
	return rc;
}

/* Where doctor's lines go: standard output, or the JSON being built. */
struct ctl_doctor {
	cJSON *checks;              /* the current part's checks; NULL: text */
};

/* doctor_line_fn: one doctor line, printed or added to the JSON. */
static void
ctl_doctor_line(enum doctor_level level, const char *text, void *arg)
{
	struct ctl_doctor *d = arg;
	cJSON *obj;

	if (d->checks == NULL) {
		printf("  %-4s %s\n", level == DOCTOR_FIX ? "FIX" :
		    doctor_level_name(level), text);
		return;
	}
	if ((obj = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddStringToObject(obj, "level", doctor_level_name(level));
	cJSON_AddStringToObject(obj, "text", text);
	cJSON_AddItemToArray(d->checks, obj);
}

/* A JSON part {[tenant, halo_url,] checks: [], problems} added to
 * PARENT (under NAME, or to the array PARENT when NAME is NULL), for
 * tenant T or the store (T NULL); its checks array, or NULL. */
static cJSON *
ctl_doctor_part(cJSON *parent, const char *name, const struct conf_tenant *t,
    cJSON **part)
{
	if ((*part = cJSON_CreateObject()) == NULL)
		return NULL;
	if (name != NULL)
		cJSON_AddItemToObject(parent, name, *part);
	else
		cJSON_AddItemToArray(parent, *part);
	if (t != NULL) {
		cJSON_AddStringToObject(*part, "tenant", t->name);
		cJSON_AddStringToObject(*part, "halo_url", t->halo_url);
	}
	return cJSON_AddArrayToObject(*part, "checks");
}

/* "doctor [TENANT] [--json]". */
static int
ctl_doctor(struct store *st, const struct conf *conf, const char *tenant,
    bool json)
{
	char err[1024];
	uint8_t key[CRYPTO_KEY_LEN];
	struct ctl_doctor d = { NULL };
	struct oauth *oa;
	cJSON *root = NULL, *tenants = NULL, *part = NULL;
	int problems = 0, n;
	size_t i, checked = 0;
	bool oom = false;

	if (json && ((root = cJSON_CreateObject()) == NULL ||
	    (d.checks = ctl_doctor_part(root, "store", NULL, &part)) == NULL ||
	    (tenants = cJSON_AddArrayToObject(root, "tenants")) == NULL)) {
		cJSON_Delete(root);
		return 1;
	}
	n = doctor_store(st, conf->job_lease, WORKER_POST_GRACE,
	    ctl_doctor_line, &d);
	problems += n;
	if (json)
		cJSON_AddNumberToObject(part, "problems", n);
	if (keys_load(&ctl_sd, st, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealing key: %s\n", err);
		cJSON_Delete(root);
		return 1;
	}
	oa = oauth_new(st, key);
	crypto_wipe(key, sizeof(key));
	if (oa == NULL) {
		cJSON_Delete(root);
		return 1;
	}
	http_global_init();
	(void)http_set_ca_file(conf->halo_ca_file);
	if (conf->insecure_http)
		http_allow_loopback_http(true);
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];

		if (tenant != NULL && strcmp(t->name, tenant) != 0)
			continue;
		if (json) {
			if ((d.checks = ctl_doctor_part(tenants, NULL, t, &part)) ==
			    NULL) {
				oom = true;
				break;
			}
		} else {
			printf("tenant %s: %s (auth %s%s)\n", t->name, t->halo_url,
			    t->auth_url ? t->auth_url : t->halo_url,
			    t->auth_url ? "" : "/auth");
		}
		n = doctor_tenant(st, oa, t, 0, ctl_doctor_line, &d);
		problems += n;
		if (json)
			cJSON_AddNumberToObject(part, "problems", n);
		checked++;
	}
	oauth_free(oa);
	if (oom || checked == 0) {
		cJSON_Delete(root);
		if (oom)
			return 1;
		fprintf(stderr, "no tenant %s\n", tenant ? tenant : "configured");
		return 2;
	}
	if (json) {
		cJSON_AddNumberToObject(root, "problems", problems);
		if (ctl_json_print(root) != 0)
			return 1;
	} else {
		printf("%d problem%s found\n", problems, problems == 1 ? "" : "s");
	}
	return problems == 0 ? 0 : 1;
}

/* TENANT, or the only tenant when NULL; NULL (message printed) when none. */
static const char *
ctl_pick_tenant(const struct conf *conf, const char *tenant)
{
	if (tenant == NULL) {
		if (conf->n_tenants != 1) {
			fprintf(stderr, "%s: name one\n", conf->n_tenants == 0 ?
			    "no tenant configured" : "several tenants");
			return NULL;
		}
		return conf->tenants[0]->name;
	}
	if (conf_tenant_find(conf, tenant) != NULL)
		return tenant;
	fprintf(stderr, "no tenant '%s' in %s\n", tenant, conf->path);
	return NULL;
}

/* "enroll AGENT [TENANT]": a one-time code and the link to open. */
static int
ctl_enroll(struct store *st, const struct conf *conf, const char *agent_arg,
    const char *tenant_arg)
{
	char err[1024], agent[321], hash_key[65], hash[65];
	char code[9], shown[10], until[32];
	uint8_t key[CRYPTO_KEY_LEN];
	const char *tenant, *ttl_env;
	long ttl = ENROLL_CODE_TTL;
	time_t now = time(NULL);
	struct stat sb;
	struct tm tm;
	enum store_status ss;
	int tries;

	if ((tenant = ctl_pick_tenant(conf, tenant_arg)) == NULL)
		return 2;
	if (!ctl_agent_address(agent_arg, agent))
		return 2;
	if (conf->public_url == NULL) {
		fprintf(stderr, "public_url is not set in %s: agents could not"
		    " open the enrollment page\n", conf->path);
		return 2;
	}
	/* tests only: codes that expire sooner (0 = already expired) */
	ttl_env = getenv("HALO_MILTER_TEST_CODE_TTL");
	if (ttl_env != NULL && *ttl_env != '\0') {
		char *end;

		errno = 0;
		ttl = strtol(ttl_env, &end, 10);
		if (errno != 0 || *end != '\0' || ttl < 0 || ttl > ENROLL_CODE_TTL) {
			fprintf(stderr, "HALO_MILTER_TEST_CODE_TTL: 0 to %d\n",
			    ENROLL_CODE_TTL);
			return 2;
		}
	}
	if (keys_load(&ctl_sd, st, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealing key: %s\n", err);
		return 1;
	}
	if (stat(conf->state_dir, &sb) == 0 &&
	    chown(ctl_sd.seal_key, sb.st_uid, sb.st_gid) != 0 && errno != EPERM)
		fprintf(stderr, "warning: cannot chown %s\n", ctl_sd.seal_key);
	if (enroll_hash_key(key, hash_key) != 0) {
		crypto_wipe(key, sizeof(key));
		return 1;
	}
	crypto_wipe(key, sizeof(key));
	/* old enrollments are history only: keep a month of it */
	store_enroll_purge(st, now - 30 * 86400, NULL);
	for (tries = 0, ss = STORE_DUPLICATE; tries < 5 && ss == STORE_DUPLICATE;
	    tries++) {
		if (crypto_user_code(code) != 0 ||
		    enroll_code_hash(hash_key, code, hash) != 0) {
			ss = STORE_ERROR;
			break;
		}
		ss = store_enroll_add(st, tenant, agent, hash, now, now + ttl, NULL);
	}
	crypto_wipe(hash_key, sizeof(hash_key));
	if (ss != STORE_OK) {
		fprintf(stderr, "cannot store the enrollment\n");
		crypto_wipe(code, sizeof(code));
		return 1;
	}
	enroll_code_format(code, shown);
	gmtime_r(&(time_t){ now + ttl }, &tm);
	strftime(until, sizeof(until), "%H:%M UTC", &tm);
	printf("enrollment for %s in tenant %s\n", agent, tenant);
	printf("code: %s (valid until %s, once)\n", shown, until);
	printf("the agent opens %s/enroll and types the code,\n", conf->public_url);
	printf("or opens %s/enroll?code=%s\n", conf->public_url, shown);
	if (conf->web_listen == NULL)
		printf("note: web_listen is off here: another node must serve"
		    " %s\n", conf->public_url);
	crypto_wipe(code, sizeof(code));
	crypto_wipe(shown, sizeof(shown));
	return 0;
}

/* A time member: seconds since the epoch, or null when T is 0. */
static void
ctl_json_time(cJSON *obj, const char *name, time_t t)
{
	if (t > 0)
		cJSON_AddNumberToObject(obj, name, (double)t);
	else
		cJSON_AddNullToObject(obj, name);
}

/* Row R of "agents --json": the standing as fields, and the text line's
 * STATUS. */
static cJSON *
ctl_agent_json(const struct agent_row *r, time_t now, const char *status)
{
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL)
		return NULL;
	cJSON_AddStringToObject(obj, "tenant", r->tenant);
	cJSON_AddStringToObject(obj, "agent", r->agent);
	cJSON_AddStringToObject(obj, "standing", r->token == NULL ?
	    "not_enrolled" : strcmp(r->token, "ok") == 0 ? "enrolled" :
	    "reenroll");
	ctl_json_time(obj, "last_refresh", r->token != NULL ? r->last_refresh :
	    0);
	cJSON_AddNumberToObject(obj, "pending_codes", r->pending);
	ctl_json_time(obj, "pending_until", r->pending_until > now ?
	    r->pending_until : 0);
	cJSON_AddBoolToObject(obj, "signing_in", r->signin_until > now);
	ctl_json_str(obj, "last_enrollment", r->last[0] != '\0' ? r->last :
	    NULL);
	cJSON_AddStringToObject(obj, "status", status);
	return obj;
}

/* "agents [--json]": every agent the configuration names or the store
 * knows. */
static int
ctl_agents(struct store *st, const struct conf *conf, bool json)
{
	struct agent_rows rows;
	char status[160], age[24], safe[96];
	cJSON *array = NULL, *obj;
	size_t i;
	int rc = 0;

	if (json && (array = cJSON_CreateArray()) == NULL)
		return 1;
	if (agent_rows_collect(st, conf, time(NULL), &rows) != 0 ||
	    rows.truncated)
		rc = 1;
	if (!json)
		printf("%-12s %-36s %s\n", "TENANT", "AGENT", "STATUS");
	for (i = 0; i < rows.n; i++) {
		struct agent_row *r = &rows.v[i];
		size_t len;

		if (r->token != NULL && strcmp(r->token, "ok") == 0) {
			ctl_age(r->last_refresh, age, sizeof(age));
			snprintf(status, sizeof(status), "enrolled (token refreshed"
			    " or stored %s ago)", age);
		} else if (r->token != NULL) {
			snprintf(status, sizeof(status), "re-enroll needed (Halo"
			    " refused its token)");
		} else {
			snprintf(status, sizeof(status), "not enrolled");
		}
		len = strlen(status);
		if (r->signin_until > rows.now)
			snprintf(status + len, sizeof(status) - len, "; signing in"
			    " now");
		else if (r->pending_until > rows.now)
			snprintf(status + len, sizeof(status) - len, "; pending code"
			    " (expires in %ldm)", (long)(r->pending_until -
			    rows.now + 59) / 60);
		else if (r->last[0] != '\0' && strcmp(r->last, "ok") != 0 &&
		    r->token == NULL)
			snprintf(status + len, sizeof(status) - len, "; last"
			    " enrollment %s", r->last);
		if (json) {
			if ((obj = ctl_agent_json(r, rows.now, status)) == NULL)
				rc = 1;
			else
				cJSON_AddItemToArray(array, obj);
			continue;
		}
		printf("%-12s %-36s %s\n", r->tenant, log_safe(r->agent, safe,
		    sizeof(safe)), status);
	}
	agent_rows_clear(&rows);
	if (json && ctl_json_print(array) != 0)
		rc = 1;
	return rc;
}

/* "revoke AGENT [TENANT]": delete the agent's token. */
static int
ctl_revoke(struct store *st, const struct conf *conf, const char *agent_arg,
    const char *tenant_arg)
{
	char agent[321];
	const char *tenant;
	enum store_status ss;

	if ((tenant = ctl_pick_tenant(conf, tenant_arg)) == NULL)
		return 2;
	if (!ctl_agent_address(agent_arg, agent))
		return 2;
	ss = store_token_delete(st, tenant, agent);
	if (ss == STORE_NOT_FOUND) {
		fprintf(stderr, "%s has no token in tenant %s\n", agent, tenant);
		return 1;
	}
	if (ss != STORE_OK) {
		fprintf(stderr, "cannot delete the token\n");
		return 1;
	}
	printf("token of %s in tenant %s deleted; their jobs wait until they"
	    " enroll again (halo-milterctl enroll %s %s)\n", agent, tenant,
	    agent, tenant);
	printf("note: a running daemon may use the access token it holds until"
	    " it expires (at most an hour); Halo itself still knows the grant\n");
	return 0;
}

/* Read one line of at most CRYPTO_PW_MAX bytes into OUT (the newline
 * dropped); -1 at end of input or when the line is too long. */
static int
ctl_read_secret_line(char out[CRYPTO_PW_MAX + 2])
{
	size_t len;
	int c;

	if (fgets(out, CRYPTO_PW_MAX + 2, stdin) == NULL)
		return -1;
	len = strlen(out);
	if (len > 0 && out[len - 1] == '\n') {
		out[--len] = '\0';
	} else if (len > CRYPTO_PW_MAX) {
		/* no newline within the limit: drain the rest, refuse it */
		while ((c = getchar()) != EOF && c != '\n')
			;
		return -1;
	}
	if (len > 0 && out[len - 1] == '\r')
		out[--len] = '\0';
	return 0;
}

/* Prompt on the terminal with echo off and read one line. */
static int
ctl_prompt_secret(const char *prompt, char out[CRYPTO_PW_MAX + 2])
{
	struct termios old, quiet;
	bool restore;
	int rc;

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	restore = tcgetattr(STDIN_FILENO, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	rc = ctl_read_secret_line(out);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return rc;
}

/* Characters (UTF-8 code points) in S. */
static size_t
ctl_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Write TEXT to PATH atomically: PATH.tmp (0600, O_EXCL), fsync, owner of
 * the state directory DIR, rename, fsync DIR. */
static int
ctl_write_private(const char *dir, const char *path, const char *text)
{
	char tmp[PATH_MAX];
	struct stat sb;
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	/* a temp file a crash left behind holds nothing we need */
	if (unlink(tmp) != 0 && errno != ENOENT)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return -1;
	if (util_write_full(fd, text, strlen(text)) != 0)
		goto fail;
	/* the daemon's user must read it: give it the state dir's owner */
	if (stat(dir, &sb) == 0 && fchown(fd, sb.st_uid, sb.st_gid) != 0 &&
	    errno != EPERM)
		goto fail;
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	(void)util_fsync_dir(dir);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* "admin-password": read a new password, store its hash. */
static int
ctl_admin_password(const struct conf *conf)
{
	char first[CRYPTO_PW_MAX + 2], again[CRYPTO_PW_MAX + 2];
	char hash[CRYPTO_PW_HASH_MAX + 2];
	const char *path = ctl_sd.admin_pw;
	bool tty = isatty(STDIN_FILENO);
	int rc = 1;

	memset(again, 0, sizeof(again));
	memset(hash, 0, sizeof(hash));
	if (access(conf->state_dir, W_OK) != 0) {
		fprintf(stderr, "%s: %s\n", conf->state_dir, strerror(errno));
		return 1;
	}
	if ((tty ? ctl_prompt_secret("new admin password: ", first) :
	    ctl_read_secret_line(first)) != 0) {
		fprintf(stderr, "no password read (one line of at most %d bytes)\n",
		    CRYPTO_PW_MAX);
		goto out;
	}
	if (ctl_chars(first) < CRYPTO_PW_MIN) {
		fprintf(stderr, "too short: at least %d characters; nothing"
		    " changed\n", CRYPTO_PW_MIN);
		goto out;
	}
	if (tty && (ctl_prompt_secret("again: ", again) != 0 ||
	    !crypto_equal(first, again))) {
		fprintf(stderr, "the two passwords differ; nothing changed\n");
		goto out;
	}
	if (crypto_password_hash(first, 0, hash, sizeof(hash) - 1) != 0) {
		fprintf(stderr, "cannot hash the password\n");
		goto out;
	}
	strcat(hash, "\n");
	if (ctl_write_private(conf->state_dir, path, hash) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	printf("admin password set (%s); sign in at %s/admin\n", path,
	    conf->public_url != NULL ? conf->public_url : "PUBLIC_URL");
	printf("sessions signed in with an earlier password have ended\n");
	rc = 0;
out:
	crypto_wipe(first, sizeof(first));
	crypto_wipe(again, sizeof(again));
	crypto_wipe(hash, sizeof(hash));
	return rc;
}

/* Does something answer on the daemon's milter socket? (There is no pid
 * file; the socket is what Postfix talks to, so it is what counts.) */
static bool
ctl_daemon_running(const struct conf *conf)
{
	const char *spec = conf->socket, *colon, *at;
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_un sun;
	char port[16], host[256];
	bool up = false;
	int fd;

	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		colon = strchr(spec, ':');
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(colon + 1) >= sizeof(sun.sun_path))
			return false;
		memcpy(sun.sun_path, colon + 1, strlen(colon + 1) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		up = fd >= 0 && connect(fd, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0;
		if (fd >= 0)
			close(fd);
		return up;
	}
	/* inet:PORT@HOST, inet6:PORT@HOST */
	colon = strchr(spec, ':');
	at = colon != NULL ? strchr(colon, '@') : NULL;
	if (at == NULL || (size_t)(at - colon - 1) >= sizeof(port) ||
	    strlen(at + 1) >= sizeof(host))
		return false;
	memcpy(port, colon + 1, (size_t)(at - colon - 1));
	port[at - colon - 1] = '\0';
	snprintf(host, sizeof(host), "%s", at[1] == '[' ? at + 2 : at + 1);
	host[strcspn(host, "]")] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return false;
	for (ai = res; ai != NULL && !up; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		up = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(res);
	return up;
}

/* "store migrate [--from FILE] [TARGET]": every row of a SQLite store, and
 * the spooled messages of its unfinished jobs, into an empty PostgreSQL
 * store, in one transaction there. Tokens stay sealed: copy seal.key to
 * every node. */
static int
ctl_store_migrate(const struct conf *conf, int argc, char **argv)
{
	const char *from = NULL, *target = conf->store;
	struct store_copy_report rep;
	struct store *src, *dst;
	char err[512];
	enum store_status ss;
	int i;

	for (i = 3; i < argc; i++) {        /* after "store migrate" */
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (argv[i][0] != '-' && i == argc - 1)
			target = argv[i];
		else
			usage();
	}
	if (from == NULL)
		from = ctl_sd.sqlite;
	if (target == NULL || !store_target_is_pg(target)) {
		fprintf(stderr, "store migrate: name a PostgreSQL store"
		    " (postgresql://... or a conninfo), or set store =\n");
		return 2;
	}
	if (store_target_is_pg(from) || access(from, R_OK) != 0) {
		fprintf(stderr, "store migrate: no SQLite store at %s\n", from);
		return 1;
	}
	if ((src = store_open(from, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", from, err);
		return 1;
	}
	if ((dst = store_open(target, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cannot open the PostgreSQL store: %s\n", err);
		store_close(src);
		return 1;
	}
	ss = store_copy(src, dst, ctl_sd.spool, &rep, err, sizeof(err));
	store_close(dst);
	store_close(src);
	if (ss != STORE_OK) {
		fprintf(stderr, "store migrate: %s; nothing copied\n", err);
		return 1;
	}
	printf("copied %u jobs, %u tokens (still sealed), %u enrollments,"
	    " %u index rows, %u spooled messages\n", rep.jobs, rep.tokens,
	    rep.enrollments, rep.index_rows, rep.messages);
	printf("next: set store = to it on every node, copy %s/seal.key to"
	    " each, restart\n", conf->state_dir);
	return 0;
}

/* "keys rotate [--force]": a new sealing key, everything re-sealed (the
 * order of the steps, and why an interruption loses nothing: keys.h). */
static int
ctl_keys_rotate(struct store *st, const struct conf *conf, bool force)
{
	struct keys_counts counts;
	char err[512];

	if (ctl_daemon_running(conf)) {
		if (!force) {
			fprintf(stderr, "halo-milter is running (its socket %s"
			    " answers).\nStop it first (systemctl stop halo-milter),"
			    " rotate, then start it again:\nit keeps the key it read"
			    " at start and could not open the re-sealed tokens with"
			    " it\n(it would mark those agents \"re-enroll needed\")."
			    "\n", conf->socket);
			return 1;
		}
		fprintf(stderr, "warning: --force: something answers on %s; if it"
		    " is halo-milter, restart it right after this\n", conf->socket);
	}
	if (keys_rotate(&ctl_sd, st, &counts, err, sizeof(err)) != 0) {
		fprintf(stderr, "keys rotate: %s\n", err);
		return 1;
	}
	if (counts.resumed)
		printf("finished an interrupted rotation: the store was already"
		    " re-sealed; %s/seal.key is the new key now\n", conf->state_dir);
	else
		printf("sealing key rotated (%s/seal.key): %u refresh token%s and"
		    " %u pending sign-in verifier%s re-sealed in one transaction\n",
		    conf->state_dir, counts.tokens, counts.tokens == 1 ? "" : "s",
		    counts.verifiers, counts.verifiers == 1 ? "" : "s");
	if (counts.unreadable > 0)
		printf("note: %u sealed value%s did not open under the old key"
		    " either and %s left as %s (see \"halo-milterctl agents\":"
		    " such agents must enroll again)\n", counts.unreadable,
		    counts.unreadable == 1 ? "" : "s",
		    counts.unreadable == 1 ? "was" : "were",
		    counts.unreadable == 1 ? "it was" : "they were");
	printf("note: enrollment codes not used yet and sign-ins under way no"
	    " longer work\n(their hashes derive from the key): make new codes"
	    " for those agents\n");
	printf("start the daemon again now (systemctl start halo-milter): it"
	    " reads the key at start\n");
	return 0;
}

/* "stats". */
static int
ctl_stats(struct store *st, bool json)
{
	uint64_t counts[6];
	cJSON *obj;
	int s;

	if (store_job_counts(st, counts) != STORE_OK)
		return 1;
	if (json) {
		if ((obj = cJSON_CreateObject()) == NULL)
			return 1;
		for (s = 0; s < 6; s++)
			cJSON_AddNumberToObject(obj,
			    store_state_name((enum store_state)s), (double)counts[s]);
		return ctl_json_print(obj);
	}
	for (s = 0; s < 6; s++)
		printf("%-8s %" PRIu64 "\n", store_state_name((enum store_state)s),
		    counts[s]);
	return 0;
}

/* "manifest": the Outlook add-in manifest on standard output (no store
 * needed: it is made from the configuration alone). */
static int
ctl_manifest(const struct conf *conf, int argc, char **argv)
{
	enum manifest_format format = MANIFEST_XML;
	const char *tenant = NULL;
	bool have_format = false;
	char err[256], *text;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "xml") == 0)
				format = MANIFEST_XML;
			else if (strcmp(argv[i], "json") == 0)
				format = MANIFEST_JSON;
			else
				usage();
			have_format = true;
		} else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc)
			tenant = argv[++i];
		else
			usage();
	}
	if (!have_format)
		usage();
	text = manifest_build(conf, format, tenant, err, sizeof(err));
	if (text == NULL) {
		fprintf(stderr, "manifest: %s\n", err);
		return 1;
	}
	fputs(text, stdout);
	free(text);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *conf_path = DEFAULT_CONF;
	struct conf *conf;
	struct store *st;
	const char *db_path;
	char err[512];
	int nerrors = 0, rc;
	bool json;

	/* help needs neither a configuration nor a store */
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0))
		ctl_usage(stdout, 0);
	if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
		conf_path = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		ctl_usage(stdout, 0);
	conf = conf_load(conf_path, stderr, &nerrors);
	if (conf == NULL)
		return 1;
	if (statedir_init(&ctl_sd, conf->state_dir, conf->store, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", conf_path, err);
		conf_free(conf);
		return 1;
	}
	db_path = ctl_sd.store;
	/* needs no store: the page may be set up before the first start */
	if (strcmp(argv[1], "admin-password") == 0) {
		if (argc != 2)
			usage();
		rc = ctl_admin_password(conf);
		conf_free(conf);
		return rc;
	}
	if (strcmp(argv[1], "manifest") == 0) {
		rc = ctl_manifest(conf, argc - 1, argv + 1);
		conf_free(conf);
		return rc;
	}
	/* opens both stores itself */
	if (strcmp(argv[1], "store") == 0) {
		if (argc < 3 || strcmp(argv[2], "migrate") != 0)
			usage();
		rc = ctl_store_migrate(conf, argc, argv);
		conf_free(conf);
		return rc;
	}
	if (!store_target_is_pg(db_path) && access(db_path, R_OK | W_OK) != 0) {
		/* say which: a missing store and a refused one need different
		 * fixes (start the daemon once, or run as its user or root) */
		if (errno == ENOENT)
			fprintf(stderr, "no store at %s (state_dir %s; has"
			    " halo-milter run?)\n", db_path, conf->state_dir);
		else
			fprintf(stderr, "cannot open store %s: %s (run as root"
			    " or as the daemon's user)\n", db_path,
			    strerror(errno));
		conf_free(conf);
		return 1;
	}
	st = store_open(db_path, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "cannot open store: %s\n", err);
		conf_free(conf);
		return 1;
	}
	/* --json anywhere after the command (queue reads its own) */
	json = strcmp(argv[1], "queue") != 0 && ctl_take_json(&argc, argv);
	if (json && strcmp(argv[1], "show") != 0 &&
	    strcmp(argv[1], "stats") != 0 && strcmp(argv[1], "agents") != 0 &&
	    strcmp(argv[1], "doctor") != 0)
		usage();
	if (strcmp(argv[1], "queue") == 0)
		rc = ctl_queue(st, argc - 1, argv + 1);
	else if (strcmp(argv[1], "show") == 0 && argc == 3)
		rc = ctl_show(st, argv[2], json);
	else if (strcmp(argv[1], "stats") == 0 && argc == 2)
		rc = ctl_stats(st, json);
	else if (strcmp(argv[1], "doctor") == 0 && argc <= 3)
		rc = ctl_doctor(st, conf, argc == 3 ? argv[2] : NULL, json);
	else if (strcmp(argv[1], "retry") == 0 && argc == 3)
		rc = ctl_retry(st, argv[2]);
	else if (strcmp(argv[1], "enroll") == 0 && argc >= 3 && argc <= 4)
		rc = ctl_enroll(st, conf, argv[2], argc == 4 ? argv[3] : NULL);
	else if (strcmp(argv[1], "agents") == 0 && argc == 2)
		rc = ctl_agents(st, conf, json);
	else if (strcmp(argv[1], "revoke") == 0 && argc >= 3 && argc <= 4)
		rc = ctl_revoke(st, conf, argv[2], argc == 4 ? argv[3] : NULL);
	else if (strcmp(argv[1], "keys") == 0 && argc >= 3 && argc <= 4 &&
	    strcmp(argv[2], "rotate") == 0 && (argc == 3 ||
	    strcmp(argv[3], "--force") == 0))
		rc = ctl_keys_rotate(st, conf, argc == 4);
	else if (strcmp(argv[1], "token") == 0 && argc >= 4 && argc <= 5 &&
	    strcmp(argv[2], "import") == 0)
		rc = ctl_token_import(st, conf, argv[3], argc == 5 ? argv[4] : NULL);
	else
		usage();
	store_close(st);
	conf_free(conf);
	return rc;
}
