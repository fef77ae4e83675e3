/*
 * nullmilter.c - the cheapest possible libmilter milter, as a yardstick for
 * the throughput benchmark: it takes part in the same protocol steps as
 * halo-milter (connect, MAIL, RCPT, DATA, headers, end of headers, body,
 * end of message) and adds the same number of headers (two) at end of
 * message, but does no work of its own: no spool file, no fsync, no store,
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
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx; (void)name; (void)value;
	return SMFIS_CONTINUE;
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
	return SMFIS_CONTINUE;
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
	.xxfi_envrcpt = nm_args,
	.xxfi_header = nm_header,
	.xxfi_eoh = nm_ctx,
	.xxfi_body = nm_body,
	.xxfi_eom = nm_eom,
	.xxfi_abort = nm_ctx,
	.xxfi_close = nm_ctx,
	.xxfi_data = nm_ctx,
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
