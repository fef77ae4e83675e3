/*
 * halo-milterctl.c - the operator's CLI.
 *
 *   halo-milterctl [-c FILE] queue [-s STATE] [-n LIMIT]   list jobs
 *   halo-milterctl [-c FILE] show ID                      one job + headers
 *   halo-milterctl [-c FILE] stats                        jobs per state
 *   halo-milterctl [-c FILE] retry ID                     re-queue a job
 *   halo-milterctl [-c FILE] token import AGENT [TENANT]  refresh token on stdin
 *   halo-milterctl [-c FILE] doctor [TENANT]              check Halo set-up
 *   halo-milterctl [-c FILE] enroll AGENT [TENANT]        one-time code + link
 *   halo-milterctl [-c FILE] agents                       agents and standing
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
#include "halo.h"
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
#define CTL_QUEUE_LIMIT 50            /* "queue" rows without -n, on a tty */

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
	    "  show ID                      one job and its message headers\n"
	    "  stats [--json]               number of jobs per state\n"
	    "  retry ID                     queue a failed, skipped or waiting job again\n"
	    "                               (not a done one)\n"
	    "  token import AGENT [TENANT]  store AGENT's Halo refresh token, read\n"
	    "                               from standard input (sealed at rest)\n"
	    "  doctor [TENANT]              check each tenant's Halo set-up: agents'\n"
	    "                               tokens, ticket type, outcomes, budget\n"
	    "  enroll AGENT [TENANT]        a one-time code (10 minutes) and the link\n"
	    "                               AGENT opens to connect their Halo account\n"
	    "  agents                       agents and their standing (enrolled,\n"
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
		obj = cJSON_CreateObject();
		if (obj == NULL)
			return;
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
			cJSON_AddNumberToObject(obj, "ticket_id",
			    (double)j->ticket_id);
		else
			cJSON_AddNullToObject(obj, "ticket_id");
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

/* Print the header block of a spool file, made safe for a terminal. */
static void
ctl_print_headers(const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[4096], safe[4096];
	size_t total = 0, len;

	if (fp == NULL) {
		printf("  (%s)\n", errno == ENOENT ? "message removed from the"
		    " spool once logged" : strerror(errno));
		return;
	}
	while (total < CTL_HEADER_MAX && fgets(line, sizeof(line), fp) != NULL) {
		len = strlen(line);
		total += len;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			break;
		/* keep the folding whitespace visible, mask control bytes */
		for (size_t i = 0; i < len; i++)
			if (line[i] == '\t')
				line[i] = ' ';
		printf("  %s\n", log_safe(line, safe, sizeof(safe)));
	}
	if (total >= CTL_HEADER_MAX)
		printf("  (header block truncated at %d bytes)\n", CTL_HEADER_MAX);
	fclose(fp);
}

/* One "label value" line of "show", made safe for a terminal. */
static void
ctl_field(const char *label, const char *value)
{
	char safe[1024];

	printf("%-14s %s\n", label, log_safe(value ? value : "-", safe,
	    sizeof(safe)));
}

/* "show ID". */
static int
ctl_show(struct store *st, const char *idtext)
{
	struct store_job *j = NULL;
	char *end, created[64], path[PATH_MAX];
	long long id;
	struct tm tm;
	enum store_status rc;

	errno = 0;
	id = strtoll(idtext, &end, 10);
	if (errno != 0 || *end != '\0' || id <= 0) {
		fprintf(stderr, "bad job id '%s'\n", idtext);
		return 2;
	}
	rc = store_job_get(st, id, &j);
	if (rc == STORE_NOT_FOUND) {
		fprintf(stderr, "no job %lld\n", id);
		return 1;
	}
	if (rc != STORE_OK)
		return 1;
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
	if (j->spool != NULL) {
		if (spool_path(ctl_sd.spool, j->spool, path, sizeof(path)) == 0) {
			printf("headers:\n");
			ctl_print_headers(path);
		}
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

/* A growing list of agent addresses (doctor). */
struct ctl_agents {
	char **v;
	size_t n;
};

/* Add AGENT unless present. */
static void
ctl_agents_add(struct ctl_agents *a, const char *agent)
{
	char **grown;
	size_t i;

	if (agent == NULL)
		return;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], agent) == 0)
			return;
	grown = realloc(a->v, (a->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	a->v = grown;
	if ((a->v[a->n] = strdup(agent)) != NULL)
		a->n++;
}

/* store_token_list callback: collect agents with a token row. */
static void
ctl_collect_agent(const struct store_token *t, void *arg)
{
	ctl_agents_add(arg, t->agent);
}

/* One doctor line; counts problems. */
static void
ctl_diag(int *problems, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("  %s ", ok ? "ok  " : "FIX ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		(*problems)++;
}

/* Is NAME one of LIST's names (case-insensitive)? */
static bool
ctl_named_has(const struct halo_named *list, size_t n, const char *name,
    int64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((name != NULL && list[i].name != NULL &&
		    strcasecmp(list[i].name, name) == 0) ||
		    (name == NULL && list[i].id == id))
			return true;
	return false;
}

/*
 * Which statuses are closed (the full list against excludeclosed=true:
 * Halo's status schema has no closed flag): listed, and a problem when
 * that cannot tell (then closed tickets are never seen, unless the
 * policy is "append"). With "reopen", the status a reopened ticket gets
 * must exist in Halo and be open.
 */
static void
ctl_doctor_statuses(const struct conf_tenant *t, const struct halo_conf *hc,
    const char *token, int *problems)
{
	struct halo_named *list = NULL;
	struct halo_err err;
	char names[512];
	int64_t open = 0;
	size_t i, n = 0, len = 0, closed = 0;
	int found = -1;
	bool known = false;

	memset(&err, 0, sizeof(err));
	if (halo_status_states(hc, token, &list, &n, &known, &err) != 0) {
		ctl_diag(problems, false, "cannot list statuses: %s", err.message);
		return;
	}
	names[0] = '\0';
	for (i = 0; i < n; i++) {
		if (list[i].closed) {
			closed++;
			if (len < sizeof(names) - 1)
				len += (size_t)snprintf(names + len, sizeof(names) - len,
				    "%s%" PRId64 " %s", len ? ", " : "", list[i].id,
				    list[i].name != NULL ? list[i].name : "");
			if (len >= sizeof(names))
				len = sizeof(names) - 1;
		} else if (list[i].id > 0 && (open == 0 || list[i].id < open)) {
			open = list[i].id;
		}
		if (list[i].id == t->reopen_status_id)
			found = (int)i;
	}
	if (known)
		ctl_diag(problems, true, "closed statuses (Status?excludeclosed=true"
		    " leaves them out): %s", names);
	else if (t->closed_tickets == CONF_CLOSED_APPEND)
		printf("  warn cannot tell which statuses are closed (Halo's"
		    " Status?excludeclosed=true lists %s); closed_tickets = append"
		    " does not need to\n", closed == n ? "none of them" :
		    "every status");
	else
		ctl_diag(problems, false, "cannot tell which statuses are closed:"
		    " Status?excludeclosed=true lists %s, so closed tickets are"
		    " not recognised (the worker falls back to status 9 only)",
		    n > 0 && closed == n ? "none of them" : "every status");
	if (t->closed_tickets != CONF_CLOSED_REOPEN) {
		halo_named_free(list, n);
		return;
	}
	if (t->reopen_status_id > 0)
		ctl_diag(problems, found >= 0 && !list[found].closed,
		    "reopen_status_id %ld %s", t->reopen_status_id, found < 0 ?
		    "does not exist in Halo" : list[found].closed ?
		    "is a closed status in Halo" : "exists and is open");
	else
		ctl_diag(problems, open > 0 && known, "closed tickets reopen to %s",
		    open > 0 && known ? "Halo's lowest-numbered open status" :
		    "nothing certain: Halo does not tell open from closed (set"
		    " reopen_status_id)");
	halo_named_free(list, n);
}

/* The newest created and the newest failed job of one tenant. */
struct ctl_newest {
	const char *tenant;
	int64_t ticket_id;          /* of the newest "created" job; 0: none */
	char *failed_reason;        /* of the newest failed job; NULL: none */
};

static void
ctl_newest_created(const struct store_job *j, void *arg)
{
	struct ctl_newest *n = arg;

	if (n->ticket_id == 0 && strcmp(j->tenant, n->tenant) == 0 &&
	    j->result != NULL && strcmp(j->result, "created") == 0 &&
	    j->ticket_id > 0)
		n->ticket_id = j->ticket_id;
}

static void
ctl_newest_failed(const struct store_job *j, void *arg)
{
	struct ctl_newest *n = arg;

	if (n->failed_reason == NULL && strcmp(j->tenant, n->tenant) == 0 &&
	    j->reason != NULL && strcasestr(j->reason, "custom field") != NULL)
		n->failed_reason = strdup(j->reason);
}

/*
 * Whether Halo takes the custom fields. halo-api.md names no read API for
 * field definitions, so doctor looks at what happened: the newest failed
 * job that Halo refused over a custom field, and the newest ticket the
 * gateway created, read back to see that each configured field holds a
 * value (Halo may drop a field that is not on the ticket type).
 */
static void
ctl_doctor_fields(struct store *st, const struct conf_tenant *t,
    const struct halo_conf *hc, const char *token, int *problems)
{
	const char *names[2] = { t->cf_conversation_id, t->cf_message_id };
	struct ctl_newest n = { t->name, 0, NULL };
	struct halo_ticket tk;
	struct halo_err err;
	size_t i;

	if (names[0][0] == '\0' && names[1][0] == '\0')
		return;
	(void)store_job_list(st, STORE_FAILED, 500, ctl_newest_failed, &n);
	if (n.failed_reason != NULL) {
		ctl_diag(problems, false, "custom fields: Halo refused a ticket: %s"
		    " (create the field in Halo, or set cf_conversation_id /"
		    " cf_message_id = none)", n.failed_reason);
		free(n.failed_reason);
	}
	(void)store_job_list(st, STORE_DONE, 500, ctl_newest_created, &n);
	if (n.ticket_id == 0) {
		printf("  note custom fields %s%s%s: no ticket created through the"
		    " gateway yet to check them on; run doctor again after the"
		    " first one\n", names[0], names[0][0] && names[1][0] ?
		    " and " : "", names[1]);
		return;
	}
	memset(&err, 0, sizeof(err));
	if (halo_ticket_get(hc, token, n.ticket_id, &tk, &err) != 0) {
		ctl_diag(problems, false, "custom fields: cannot read ticket %"
		    PRId64 " back: %s", n.ticket_id, err.message);
		return;
	}
	for (i = 0; i < 2; i++) {
		if (names[i][0] == '\0')
			continue;
		if (halo_ticket_has_field(&tk, names[i]))
			ctl_diag(problems, true, "custom field %s holds a value on"
			    " ticket %" PRId64 " (the newest the gateway created)",
			    names[i], n.ticket_id);
		else
			ctl_diag(problems, false, "custom field %s is empty on ticket"
			    " %" PRId64 ", which the gateway created with it: is the"
			    " field on ticket type %ld?", names[i], n.ticket_id,
			    t->ticket_type_id);
	}
	halo_ticket_clear(&tk);
}

/* Check one tenant as configured. */
static void
ctl_doctor_tenant(struct store *st, struct oauth *oa,
    const struct conf_tenant *t, int *problems)
{
	struct ctl_agents agents = { NULL, 0 };
	struct halo_conf hc;
	struct halo_err err;
	struct halo_named *list = NULL;
	char *token = NULL, *working = NULL;
	size_t i, n = 0;

	halo_conf_tenant(&hc, t);
	printf("tenant %s: %s (auth %s%s)\n", t->name, t->halo_url,
	    t->auth_url ? t->auth_url : t->halo_url, t->auth_url ? "" : "/auth");
	ctl_agents_add(&agents, t->default_agent);
	for (i = 0; i < t->n_routes; i++)
		if (t->routes[i]->mode != CONF_MODE_OFF)
			ctl_agents_add(&agents, t->routes[i]->agent);
	store_token_list(st, t->name, ctl_collect_agent, &agents);
	if (agents.n == 0)
		ctl_diag(problems, false, "no agent: routes name none and no token"
		    " is stored (halo-milterctl token import AGENT %s)", t->name);
	for (i = 0; i < agents.n; i++) {
		struct halo_agent me;
		enum oauth_status os = oauth_access_token(oa, &hc, t->name,
		    agents.v[i], true, &token, &err);
		if (os == OAUTH_NO_TOKEN) {
			ctl_diag(problems, false, "agent %s: no token; enroll it"
			    " (halo-milterctl token import %s %s)", agents.v[i],
			    agents.v[i], t->name);
			continue;
		}
		if (os == OAUTH_REENROLL) {
			ctl_diag(problems, false, "agent %s: Halo refused its refresh"
			    " token; it must enroll again", agents.v[i]);
			continue;
		}
		if (os != OAUTH_OK) {
			ctl_diag(problems, false, "agent %s: cannot reach the auth"
			    " server: %s: %s", agents.v[i],
			    http_result_name(err.kind), err.message);
			continue;
		}
		memset(&me, 0, sizeof(me));
		if (halo_agent_me(&hc, token, &me, &err) != 0)
			ctl_diag(problems, false, "agent %s: token works at the auth"
			    " server but Agent/me failed: %s", agents.v[i], err.message);
		else if (me.email == NULL || strcasecmp(me.email, agents.v[i]) != 0)
			ctl_diag(problems, false, "agent %s: the token belongs to %s",
			    agents.v[i], me.email ? me.email : "someone else");
		else
			ctl_diag(problems, true, "agent %s: token refreshed, signed in"
			    " as %s%s", agents.v[i], me.name ? me.name : me.email,
			    me.disabled ? " (DISABLED in Halo)" : "");
		if (me.disabled)
			(*problems)++;
		halo_agent_clear(&me);
		if (working == NULL) {
			working = token;
			token = NULL;
		}
		oauth_token_free(token);
		token = NULL;
	}
	if (working != NULL) {
		if (halo_list_ticket_types(&hc, working, &list, &n, &err) == 0) {
			ctl_diag(problems, ctl_named_has(list, n, NULL,
			    t->ticket_type_id), "ticket type %ld %s", t->ticket_type_id,
			    ctl_named_has(list, n, NULL, t->ticket_type_id) ?
			    "exists" : "does not exist in Halo");
			halo_named_free(list, n);
		} else {
			ctl_diag(problems, false, "cannot list ticket types: %s",
			    err.message);
		}
		if (halo_list_outcomes(&hc, working, &list, &n, &err) == 0) {
			bool a = ctl_named_has(list, n, t->append_outcome, 0);
			bool c = ctl_named_has(list, n, t->create_outcome, 0);
			ctl_diag(problems, a, "append outcome '%s' %s", t->append_outcome,
			    a ? "exists" : "is not an outcome in Halo");
			ctl_diag(problems, c, "create outcome '%s' %s", t->create_outcome,
			    c ? "exists" : "is not an outcome in Halo");
			halo_named_free(list, n);
		} else {
			ctl_diag(problems, false, "cannot list outcomes: %s", err.message);
		}
		ctl_doctor_statuses(t, &hc, working, problems);
		ctl_doctor_fields(st, t, &hc, working, problems);
		oauth_token_free(working);
	}
	/* self-hosted Halo may allow more: a warning, not a problem */
	printf("  %s request budget %u per %us%s\n",
	    (double)t->rate_limit / t->rate_window <= 1.0 ? "ok  " : "warn",
	    t->rate_limit, t->rate_window,
	    (double)t->rate_limit / t->rate_window <= 1.0 ? " (under hosted"
	    " Halo's 300 per 5 minutes)" : ": above hosted Halo's 300 per 5"
	    " minutes; expect 429s there");
	for (i = 0; i < agents.n; i++)
		free(agents.v[i]);
	free(agents.v);
}

/* "doctor [TENANT]". */
static int
ctl_doctor(struct store *st, const struct conf *conf, const char *tenant)
{
	char err[1024];
	uint8_t key[CRYPTO_KEY_LEN];
	struct oauth *oa;
	int problems = 0;
	size_t i, checked = 0;

	/* the database: reachable (it is open), its schema this build's */
	ctl_diag(&problems, store_schema_version(st) == store_schema_latest(),
	    "store: %s, schema version %d (this build: %d)%s", store_backend(st),
	    store_schema_version(st), store_schema_latest(),
	    store_is_shared(st) ? "; shared by every node using it" : "");
	/* a job another node takes over after the lease is rechecked in Halo;
	 * a request of the dead node may still be in flight that long */
	if (store_is_shared(st) && conf->job_lease < WORKER_POST_GRACE)
		printf("  warn job_lease %u s is shorter than %d s: a node could"
		    " post a job again while the request of the node that died"
		    " is still in flight at Halo\n", conf->job_lease,
		    WORKER_POST_GRACE);
	if (keys_load(&ctl_sd, st, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealing key: %s\n", err);
		return 1;
	}
	oa = oauth_new(st, key);
	crypto_wipe(key, sizeof(key));
	if (oa == NULL)
		return 1;
	http_global_init();
	(void)http_set_ca_file(conf->halo_ca_file);
	if (conf->insecure_http)
		http_allow_loopback_http(true);
	for (i = 0; i < conf->n_tenants; i++) {
		if (tenant != NULL && strcmp(conf->tenants[i]->name, tenant) != 0)
			continue;
		ctl_doctor_tenant(st, oa, conf->tenants[i], &problems);
		checked++;
	}
	oauth_free(oa);
	if (checked == 0) {
		fprintf(stderr, "no tenant %s\n", tenant ? tenant : "configured");
		return 2;
	}
	printf("%d problem%s found\n", problems, problems == 1 ? "" : "s");
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

/* "agents": every agent the configuration names or the store knows. */
static int
ctl_agents(struct store *st, const struct conf *conf)
{
	struct agent_rows rows;
	char status[160], age[24], safe[96];
	size_t i;
	int rc = 0;

	if (agent_rows_collect(st, conf, time(NULL), &rows) != 0 ||
	    rows.truncated)
		rc = 1;
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
		printf("%-12s %-36s %s\n", r->tenant, log_safe(r->agent, safe,
		    sizeof(safe)), status);
	}
	agent_rows_clear(&rows);
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
	if (strcmp(argv[1], "queue") == 0)
		rc = ctl_queue(st, argc - 1, argv + 1);
	else if (strcmp(argv[1], "show") == 0 && argc == 3)
		rc = ctl_show(st, argv[2]);
	else if (strcmp(argv[1], "stats") == 0 && (argc == 2 ||
	    (argc == 3 && strcmp(argv[2], "--json") == 0)))
		rc = ctl_stats(st, argc == 3);
	else if (strcmp(argv[1], "doctor") == 0 && argc <= 3)
		rc = ctl_doctor(st, conf, argc == 3 ? argv[2] : NULL);
	else if (strcmp(argv[1], "retry") == 0 && argc == 3)
		rc = ctl_retry(st, argv[2]);
	else if (strcmp(argv[1], "enroll") == 0 && argc >= 3 && argc <= 4)
		rc = ctl_enroll(st, conf, argv[2], argc == 4 ? argv[3] : NULL);
	else if (strcmp(argv[1], "agents") == 0 && argc == 2)
		rc = ctl_agents(st, conf);
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
