/*
 * callbacks.c - libmilter callbacks: per-connection and per-message context,
 * each a thin adapter to intake.c. Callbacks never exit: on trouble they
 * answer (continue or tempfail) and clean up.
 */
#include "callbacks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

static struct intake *callbacks_intake;
static struct worker *callbacks_worker;

/* Per-connection context. */
struct connctx {
	struct intake_msg *conn_msg;     /* the message in progress, or NULL */
	unsigned long conn_noreply;      /* SMFIP_NR_* steps the MTA agreed to */
	char conn_addr[INET6_ADDRSTRLEN]; /* the client's address, or "" */
};

/* Steps whose answer is always "continue": the MTA need not wait for it
 * (a round trip per header and per body chunk). */
#define CB_NOREPLY (SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)

/* Install the shared intake. */
void
callbacks_set_intake(struct intake *in, struct worker *worker)
{
	callbacks_intake = in;
	callbacks_worker = worker;
}

/* The connection context, or NULL. */
static struct connctx *
cb_conn(SMFICTX *ctx)
{
	return (struct connctx *)smfi_getpriv(ctx);
}

/* Discard the message in progress. */
static void
cb_msg_done(struct connctx *cc)
{
	if (cc != NULL)
		cc->conn_msg = intake_msg_free(cc->conn_msg);
}

/* Pick up the queue id when the MTA has told us. */
static void
cb_queue_id(SMFICTX *ctx, struct connctx *cc)
{
	const char *qid = smfi_getsymval(ctx, "i");

	if (qid != NULL && cc->conn_msg != NULL)
		intake_msg_queue_id(cc->conn_msg, qid);
}

/*
 * Say once per process when the MTA sends no queue ID ({i}) even at end of
 * message: log lines then read NOQUEUE and cannot be matched with the MTA's.
 * Postfix sends it by default; Sendmail only when Milter.macros lists it.
 */
static void
cb_warn_no_queue_id(const struct connctx *cc)
{
	static atomic_bool warned;
	const char *qid = intake_msg_queue_id_get(cc->conn_msg);

	if ((qid == NULL || strcmp(qid, "NOQUEUE") == 0) &&
	    !atomic_exchange(&warned, true))
		log_warnx("the MTA sends no queue ID ({i} macro): log lines will"
		    " read NOQUEUE; Postfix: keep i in milter_end_of_data_macros;"
		    " Sendmail: add i to confMILTER_MACROS_ENVFROM (README,"
		    " \"Hooking it into Sendmail\")");
}

/* What a step answers: nothing when the MTA agreed not to wait. */
static sfsistat
cb_continue(const struct connctx *cc, unsigned long step)
{
	return cc != NULL && (cc->conn_noreply & step) != 0 ? SMFIS_NOREPLY :
	    SMFIS_CONTINUE;
}

/* A step with no message in progress: accept the rest, unless the MTA
 * agreed not to wait for this step's answer. */
static sfsistat
cb_no_message(const struct connctx *cc, unsigned long step)
{
	return cc != NULL && (cc->conn_noreply & step) != 0 ? SMFIS_NOREPLY :
	    SMFIS_ACCEPT;
}

/*
 * Option negotiation (milter protocol 6): the header edits we make, no
 * HELO or unknown-command callbacks, and no replies to the steps that
 * always continue, where the MTA offers that. Runs before connect.
 */
static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct connctx *cc;

	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS);
	*pf2 = 0;
	*pf3 = 0;
	cc = calloc(1, sizeof(*cc));
	if (cc == NULL) {
		/* no context to remember the no-reply steps in: ask for none
		 * (connect then tries again and passes the mail untouched) */
		*pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOUNKNOWN);
		return SMFIS_CONTINUE;
	}
	/* the context exists now, and the connect step has nothing else to
	 * do unless submission_networks needs the client's address: the MTA
	 * may then skip it (a round trip per SMTP connection) */
	*pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | CB_NOREPLY);
	if (!intake_wants_client_addr(callbacks_intake))
		*pf1 |= f1 & SMFIP_NOCONNECT;
	cc->conn_noreply = *pf1 & CB_NOREPLY;
	smfi_setpriv(ctx, cc);
	return SMFIS_CONTINUE;
}

/* The client's address as text into OUT ("" when not an IP address). */
static void
cb_addr_text(const _SOCK_ADDR *addr, char out[INET6_ADDRSTRLEN])
{
	const struct sockaddr *sa = (const struct sockaddr *)addr;

	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		if (inet_ntop(AF_INET, &in->sin_addr, out, INET6_ADDRSTRLEN) == NULL)
			out[0] = '\0';
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, out,
		    INET6_ADDRSTRLEN) == NULL)
			out[0] = '\0';
	}
}

/* New SMTP connection: makes the context when negotiation could not (or
 * an MTA does not negotiate), and keeps the client's address for
 * submission_networks (the step is not skipped when that is set). */
static sfsistat
cb_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	struct connctx *cc = cb_conn(ctx);

	(void)host;
	if (cc == NULL)
		cc = calloc(1, sizeof(*cc));
	if (cc == NULL) {
		log_warnx("connect: out of memory; passing connection untouched");
		return SMFIS_ACCEPT;       /* mail always flows */
	}
	cb_addr_text(addr, cc->conn_addr);
	smfi_setpriv(ctx, cc);
	return SMFIS_CONTINUE;
}

/* MAIL FROM: a new message begins. */
static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct connctx *cc = cb_conn(ctx);
	const char *client;

	if (cc == NULL)
		return SMFIS_ACCEPT;
	cb_msg_done(cc);
	cc->conn_msg = intake_msg_new(callbacks_intake);
	if (cc->conn_msg == NULL) {
		log_warnx("envfrom: out of memory; message not inspected");
		return SMFIS_ACCEPT;
	}
	intake_msg_envfrom(cc->conn_msg, argv[0]);
	/* who the session proved to be: the SMTP AUTH login (Postfix sends
	 * {auth_authen} at MAIL FROM by default, Sendmail when configured),
	 * and the client's address (connect step, else {client_addr}) */
	client = cc->conn_addr[0] != '\0' ? cc->conn_addr :
	    smfi_getsymval(ctx, "{client_addr}");
	intake_msg_session(cc->conn_msg, smfi_getsymval(ctx, "{auth_authen}"),
	    client);
	cb_queue_id(ctx, cc);
	return SMFIS_CONTINUE;
}

/* RCPT TO: route it. */
static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc != NULL && cc->conn_msg != NULL)
		intake_msg_rcpt(cc->conn_msg, argv[0]);
	return cb_continue(cc, SMFIP_NR_RCPT);
}

/* DATA: unrouted mail leaves us here, costing nothing more. */
static sfsistat
cb_data(SMFICTX *ctx)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc == NULL || cc->conn_msg == NULL ||
	    (!intake_msg_routed(cc->conn_msg) &&
	    !intake_msg_outbound(cc->conn_msg))) {
		cb_msg_done(cc);
		return SMFIS_ACCEPT;
	}
	cb_queue_id(ctx, cc);
	return SMFIS_CONTINUE;
}

/* One header. */
static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc == NULL || cc->conn_msg == NULL)
		return cb_no_message(cc, SMFIP_NR_HDR);
	intake_msg_header(cc->conn_msg, name, value);
	return cb_continue(cc, SMFIP_NR_HDR);
}

/* End of headers. */
static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc == NULL || cc->conn_msg == NULL)
		return cb_no_message(cc, SMFIP_NR_EOH);
	intake_msg_eoh(cc->conn_msg);
	return cb_continue(cc, SMFIP_NR_EOH);
}

/* A body chunk: streamed to the spool file. */
static sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc == NULL || cc->conn_msg == NULL)
		return cb_no_message(cc, SMFIP_NR_BODY);
	intake_msg_body(cc->conn_msg, chunk, len);
	return cb_continue(cc, SMFIP_NR_BODY);
}

/* End of message: local work only, then apply the edits. */
static sfsistat
cb_eom_run(SMFICTX *ctx)
{
	struct connctx *cc = cb_conn(ctx);
	const struct intake_edit *edits;
	enum intake_verdict verdict;
	size_t n, i;
	int k, failed = 0;

	if (cc == NULL || cc->conn_msg == NULL)
		return SMFIS_CONTINUE;
	cb_queue_id(ctx, cc);
	cb_warn_no_queue_id(cc);
	verdict = intake_msg_eom(cc->conn_msg);
	if (verdict == INTAKE_TEMPFAIL) {
		smfi_setreply(ctx, "451", "4.3.0",
		    "Temporary local problem, please try again later");
		cb_msg_done(cc);
		return SMFIS_TEMPFAIL;
	}
	n = intake_msg_edits(cc->conn_msg, &edits);
	for (i = 0; i < n; i++) {
		if (edits[i].op == INTAKE_EDIT_DELETE) {
			/* last occurrence first, so indexes stay valid */
			for (k = edits[i].count; k >= 1; k--)
				if (smfi_chgheader(ctx, edits[i].name, k, NULL) !=
				    MI_SUCCESS)
					failed++;
		} else if (smfi_addheader(ctx, edits[i].name, edits[i].value) !=
		    MI_SUCCESS) {
			failed++;
		}
	}
	if (failed > 0)
		log_warnx("%s: %d header change%s refused by the MTA",
		    intake_msg_queue_id_get(cc->conn_msg), failed,
		    failed == 1 ? "" : "s");
	cb_msg_done(cc);
	worker_kick(callbacks_worker);
	return SMFIS_CONTINUE;
}

/* End of message, timed for halo_milter_eom_seconds (the answer it gives
 * the MTA is ready when it returns). */
static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct timespec t0, t1;
	sfsistat rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = cb_eom_run(ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_observe(METRICS_EOM, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return rc;
}

/* The transaction was aborted: no job, no file. */
static sfsistat
cb_abort(SMFICTX *ctx)
{
	cb_msg_done(cb_conn(ctx));
	return SMFIS_CONTINUE;
}

/* Connection closed. */
static sfsistat
cb_close(SMFICTX *ctx)
{
	struct connctx *cc = cb_conn(ctx);

	if (cc != NULL) {
		cb_msg_done(cc);
		free(cc);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc callbacks_table = {
	.xxfi_name = "halo-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
	.xxfi_connect = cb_connect,
	.xxfi_helo = NULL,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_unknown = NULL,
	.xxfi_data = cb_data,
	.xxfi_negotiate = cb_negotiate,
};

/* The callback table. */
struct smfiDesc *
callbacks_desc(void)
{
	return &callbacks_table;
}
