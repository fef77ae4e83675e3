/*
 * nullmilter.c - the cheapest possible libmilter milter, as a yardstick for
 * the throughput benchmark: it negotiates exactly as halo-milter does
 * (milter/callbacks.c cb_negotiate: the same actions, no HELO, unknown or
 * connect step, and no replies to RCPT, header, end-of-headers and body,
 * where the MTA offers that), takes part in the remaining steps (MAIL,
 * RCPT, DATA, headers, end of headers, body, end of message) and adds the
 * same number of headers (two) at end of message, but does no work of its own: no spool file, no fsync, no store,
 * no digest. Postfix + nullmilter is what any milter costs; the rest of
 * halo-milter's figure is halo-milter's own work.
 *
 *     nullmilter unix:/path/to/socket
 *
 * Built by tests/bench/run.sh: cc -O2 -o nullmilter nullmilter.c -lmilter -pthread
 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define NM_NOREPLY (SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)

static unsigned long nm_noreply;        /* the no-reply steps agreed (same for all) */

static sfsistat
nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx; (void)f2; (void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS);
	*pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | NM_NOREPLY | SMFIP_NOCONNECT);
	*pf2 = 0;
	*pf3 = 0;
	nm_noreply = *pf1 & NM_NOREPLY;
	return SMFIS_CONTINUE;
}

/* Continue, or no reply where the MTA agreed to none for STEP. */
static sfsistat
nm_continue(unsigned long step)
{
	return (nm_noreply & step) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	(void)ctx; (void)host; (void)addr;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_args(SMFICTX *ctx, char **argv)
{
	(void)ctx; (void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_rcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx; (void)argv;
	return nm_continue(SMFIP_NR_RCPT);
}

static sfsistat
nm_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return nm_continue(SMFIP_NR_EOH);
}

static sfsistat
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx; (void)name; (void)value;
	return nm_continue(SMFIP_NR_HDR);
}

static sfsistat
nm_ctx(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx; (void)chunk; (void)len;
	return nm_continue(SMFIP_NR_BODY);
}

static sfsistat
nm_eom(SMFICTX *ctx)
{
	smfi_addheader(ctx, "X-Null-Conversation-Id", "00000000000000000000000000000000");
	smfi_addheader(ctx, "X-Null-Status", "queued; tenant=bench; job=0");
	return SMFIS_CONTINUE;
}

static struct smfiDesc nm_desc = {
	.xxfi_name = "nullmilter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
	.xxfi_connect = nm_connect,
	.xxfi_envfrom = nm_args,
	.xxfi_envrcpt = nm_rcpt,
	.xxfi_header = nm_header,
	.xxfi_eoh = nm_eoh,
	.xxfi_body = nm_body,
	.xxfi_eom = nm_eom,
	.xxfi_abort = nm_ctx,
	.xxfi_close = nm_ctx,
	.xxfi_data = nm_ctx,
	.xxfi_negotiate = nm_negotiate,
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nullmilter unix:/path\n");
		return 2;
	}
	umask(0);                  /* smtpd (user postfix) must reach the socket */
	if (smfi_setconn(argv[1]) != MI_SUCCESS ||
	    smfi_register(nm_desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot open %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
