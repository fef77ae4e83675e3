/*
 * halo-milter.c - the daemon: configuration, privileges, store, spool
 * recovery, then libmilter's main loop.
 *
 *   halo-milter [-c FILE] [-f] [-d]     run (foreground with -f, debug -d)
 *   halo-milter [-c FILE] -t            check the configuration and exit
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <systemd/sd-daemon.h>

#include "callbacks.h"
#include "conf.h"
#include "confgen.h"
#include "crypto.h"
#include "intake.h"
#include "keys.h"
#include "statedir.h"
#include "log.h"
#include "oauth.h"
#include "spool.h"
#include "spooljob.h"
#include "store.h"
#include "version.h"
#include "web.h"
#include "worker.h"

#define DEFAULT_CONF "/etc/halo-milter/halo-milter.conf"

/* Print usage and exit. */
static void __attribute__((noreturn))
usage(FILE *out, int status)
{
	fprintf(out, "usage: halo-milter [-c config] [-f] [-d] [-t]\n"
	    "  -c FILE  configuration (default " DEFAULT_CONF ")\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -d       debug logging\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version\n"
	    "  -h       this help (also --help)\n"
	    "See halo-milter(8) and halo-milter.conf(5).\n");
	exit(status);
}

/* Create DIR (mode 0750) when missing; chown to UID/GID when given. */
static int
main_mkdir(const char *dir, uid_t uid, gid_t gid, bool chown_it)
{
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
		return -1;
	}
	if (chown_it && chown(dir, uid, gid) != 0) {
		log_warn("chown %s", dir);
		return -1;
	}
	return 0;
}

/* Drop root privileges to PW. */
static int
main_drop_privileges(const struct passwd *pw)
{
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		log_warn("cannot drop privileges to %s", pw->pw_name);
		return -1;
	}
	if (setuid(0) == 0) {
		log_warnx("privileges could be regained after dropping them");
		return -1;
	}
	return 0;
}

/*
 * libmilter keeps its listening socket to itself and writes each reply
 * packet with a write() of its own. On TCP, Nagle's algorithm then holds
 * the second of two packets until the MTA acknowledges the first, and the
 * MTA delays that ACK: about 40 ms per message. Linux gives each accepted
 * connection the listener's TCP_NODELAY, so set it on the listener, which
 * is the only listening TCP socket at this point of start-up.
 */
static void
main_tcp_nodelay(const char *socket_spec)
{
	DIR *d;
	struct dirent *de;
	int fd, val, n = 0;
	socklen_t len;

	if (strncmp(socket_spec, "inet:", 5) != 0 &&
	    strncmp(socket_spec, "inet6:", 6) != 0)
		return;
	d = opendir("/proc/self/fd");
	if (d == NULL) {
		log_warn("TCP_NODELAY: /proc/self/fd");
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		long l = strtol(de->d_name, &end, 10);

		if (*end != '\0' || end == de->d_name || l < 0 || l > INT_MAX ||
		    l == dirfd(d))
			continue;
		fd = (int)l;
		len = sizeof(val);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) != 0 ||
		    val == 0)
			continue;
		len = sizeof(val);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) != 0 ||
		    (val != AF_INET && val != AF_INET6))
			continue;
		val = 1;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &val, sizeof(val)) == 0)
			n++;
	}
	closedir(d);
	if (n == 0)
		log_warnx("TCP_NODELAY: no listening socket found for %s; each"
		    " message may wait ~40 ms for a delayed ACK", socket_spec);
}

/* Where log lines go: the "log" key, or for "auto" syslog when detached,
 * stderr with -f, and stderr with priorities when that is the journal. */
static enum log_dest
main_log_dest(enum conf_log log, bool foreground)
{
	switch (log) {
	case CONF_LOG_SYSLOG: return LOG_DEST_SYSLOG;
	case CONF_LOG_STDERR: return LOG_DEST_STDERR;
	case CONF_LOG_JOURNAL: return LOG_DEST_JOURNAL;
	case CONF_LOG_AUTO: break;
	}
	if (!foreground)
		return LOG_DEST_SYSLOG;
	return log_stderr_is_journal() ? LOG_DEST_JOURNAL : LOG_DEST_STDERR;
}

/* Whether URL (http:// or https://) names a loopback host. */
static bool
main_url_loopback(const char *url)
{
	const char *host = strstr(url, "://");
	size_t n;

	if (host == NULL)
		return false;
	host += 3;
	n = strcspn(host, ":/?#");
	if (*host == '[')
		return strncmp(host, "[::1]", 5) == 0;
	return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	    strncmp(host, "127.", 4) == 0;
}

/*
 * What -t checks beyond what the daemon needs to start: set-ups that parse
 * but cannot work as installed. Prints "FILE: ..." for each to OUT; returns
 * the number found. A reload checks the same.
 */
static int
main_check_strict(const struct conf *conf, const char *path, FILE *out)
{
	/* the client ids of conf/halo-milter.conf, the shipped example */
	static const char *const placeholders[] = {
		"6f1c2a9e-milter-acme", "globex-milter"
	};
	const char *colon;
	bool root = getuid() == 0;
	size_t i, j;
	int n = 0;

	if (conf->user == NULL && root) {
		fprintf(out, "%s: user is not set: started as root, the daemon"
		    " would keep running as root (set user = halo-milter)\n",
		    path);
		n++;
	}
	if (conf->web_listen != NULL &&
	    (colon = strrchr(conf->web_listen, ':')) != NULL &&
	    atoi(colon + 1) < 1024 && (conf->user != NULL || !root)) {
		fprintf(out, "%s: web_listen %s: the web server starts without"
		    " root, so it cannot listen on a port below 1024\n", path,
		    conf->web_listen);
		n++;
	}
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];
		const char *urls[2] = { t->halo_url, t->auth_url };
		const char *keys[2] = { "halo_url", "auth_url" };

		for (j = 0; j < 2; j++) {
			if (urls[j] == NULL ||
			    strncasecmp(urls[j], "http://", 7) != 0)
				continue;
			if (conf->insecure_http && main_url_loopback(urls[j]))
				continue;
			fprintf(out, "%s: tenant '%s': %s %s is plain http://;"
			    " Halo is reached over https:// only (insecure_http"
			    " allows loopback, for tests)\n", path, t->name,
			    keys[j], urls[j]);
			n++;
		}
		for (j = 0; j < sizeof(placeholders) / sizeof(placeholders[0]);
		    j++)
			if (t->client_id != NULL &&
			    strcmp(t->client_id, placeholders[j]) == 0) {
				fprintf(out, "%s: tenant '%s': client_id %s is"
				    " the example's placeholder: use the Client ID"
				    " of your Halo API application\n", path,
				    t->name, t->client_id);
				n++;
			}
	}
	return n;
}

/* Block (HOW = SIG_BLOCK) or unblock SIGHUP in the calling thread and the
 * threads it starts, with STOPS also SIGTERM and SIGINT. */
static int
main_sigmask(int how, bool stops)
{
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	if (stops) {
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
	}
	err = pthread_sigmask(how, &set, NULL);
	if (err != 0) {
		errno = err;
		log_warn("pthread_sigmask");
		return -1;
	}
	return 0;
}

/*
 * Reload (SIGHUP). libmilter's own signal thread sigwait()s for SIGHUP,
 * SIGTERM and SIGINT and stops on each. SIGHUP must never reach it: the
 * main thread keeps SIGHUP unblocked, with a handler, for the whole life of
 * the daemon, while every other thread has it blocked (libmilter's signal
 * thread is started by smfi_main with the three blocked, and waits for
 * them). A signal sent to the process is given first to its main thread
 * when that thread does not block it (Linux complete_signal(); POSIX
 * leaves the choice open, other systems are untested), so kill -HUP and
 * "systemctl reload" always land in the handler. The handler only writes
 * a byte to a pipe; the main thread reads the pipe and reloads, while
 * smfi_main runs in a thread of its own and writes 'q' when it returns.
 */
static int main_pipe[2] = { -1, -1 };
static atomic_bool main_milter_done;

/* SIGHUP: ask the main thread for a reload (async-signal-safe). */
static void
main_on_sighup(int sig)
{
	int saved = errno;

	(void)sig;
	/* a full pipe already holds a reload request */
	if (write(main_pipe[1], "h", 1) < 0)
		errno = saved;
	errno = saved;
}

/* Set up the reload pipe and the SIGHUP handler. */
static int
main_reload_signal_init(void)
{
	struct sigaction sa;

	if (pipe2(main_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_warn("pipe");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_sighup;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) != 0) {
		log_warn("sigaction SIGHUP");
		return -1;
	}
	return 0;
}

/* The milter thread: libmilter's main loop; wakes the main thread when it
 * returns (SIGTERM, SIGINT or an error). ARG: where its result goes. */
static void *
main_milter_thread(void *arg)
{
	int *rc = arg;

	/* before smfi_main starts libmilter's signal thread, which inherits
	 * this mask: only the main thread takes SIGHUP */
	(void)main_sigmask(SIG_BLOCK, false);
	*rc = smfi_main() == MI_SUCCESS ? 0 : 1;
	atomic_store(&main_milter_done, true);
	/* a full pipe wakes the main thread as well: it checks the flag */
	if (write(main_pipe[1], "q", 1) < 0)
		log_debug("milter thread: reload pipe full");
	return NULL;
}

/* Tell systemd a reload started (Type=notify; a no-op without it). */
static void
main_notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	(void)sd_notifyf(0, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%"
	    PRIu64, (uint64_t)ts.tv_sec * 1000000u +
	    (uint64_t)ts.tv_nsec / 1000u);
}

/* Log each line of a report (conf_load errors, -t's checks, restart-only
 * keys) as a warning. */
static void
main_log_report(const char *report)
{
	const char *p = report, *nl;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		log_warnx("reload: %.*s", nl != NULL ? (int)(nl - p) :
		    (int)strlen(p), p);
		p = nl != NULL ? nl + 1 : NULL;
	}
}

/*
 * Reload PATH: parse and check it as -t does; refuse it (and keep the
 * running generation) on any error; else keep the keys that need a
 * restart at BOOT's values and publish it to GENS as the next generation.
 * Messages, jobs and web requests already under way finish with the
 * generation they started with.
 */
static void
main_reload(struct confgen *gens, const char *path, const struct conf *boot,
    bool debug)
{
	struct confgen_ref *cur;
	struct conf *next = NULL;
	char *report = NULL;
	size_t report_len = 0, i, routes = 0;
	uint64_t number, running;
	FILE *errs;
	int nerrors = 0, kept = 0;

	main_notify_reloading();
	log_info("reload: reading %s", path);
	cur = confgen_acquire(gens);
	running = confgen_number(cur);
	cur = confgen_release(cur);
	errs = open_memstream(&report, &report_len);
	if (errs == NULL) {
		log_warn("reload: refused: open_memstream");
		goto done;
	}
	next = conf_load(path, errs, &nerrors);
	if (next != NULL && (nerrors = main_check_strict(next, path, errs)) > 0)
		next = conf_free(next);
	if (next != NULL && (kept = conf_reload_keep(next, boot, errs)) < 0) {
		next = conf_free(next);
		nerrors = 1;
	}
	fclose(errs);
	main_log_report(report);
	free(report);
	if (next == NULL) {
		log_warnx("reload: refused: %s has %d error%s; configuration"
		    " generation %" PRIu64 " stays in use", path, nerrors,
		    nerrors == 1 ? "" : "s", running);
		goto done;
	}
	for (i = 0; i < next->n_tenants; i++)
		routes += next->tenants[i]->n_routes;
	log_set_level(debug ? LOG_DEBUG : next->log_level);
	worker_log_join_policy(next);
	if ((number = confgen_publish(gens, next)) == 0) {
		log_warnx("reload: refused: out of memory; configuration"
		    " generation %" PRIu64 " stays in use", running);
		conf_free(next);
		goto done;
	}
	log_info("reload: configuration generation %" PRIu64 " in use: %zu"
	    " route%s in %zu tenant%s%s", number, routes, routes == 1 ? "" : "s",
	    boot->n_tenants, boot->n_tenants == 1 ? "" : "s",
	    kept > 0 ? "; some keys need a restart (above)" : "");
done:
	(void)sd_notify(0, "READY=1\nSTATUS=serving");
}

/* The main thread while the milter serves: reload on each SIGHUP until
 * the milter thread ends. */
static void
main_serve(struct confgen *gens, const char *path, const struct conf *boot,
    bool debug)
{
	char buf[64];
	ssize_t n, i;
	bool reload;

	while (!atomic_load(&main_milter_done)) {
		struct pollfd pfd = { main_pipe[0], POLLIN, 0 };

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			log_warn("poll");
			sleep(1);
			continue;
		}
		reload = false;
		while ((n = read(main_pipe[0], buf, sizeof(buf))) > 0)
			for (i = 0; i < n; i++)
				reload |= buf[i] == 'h';
		if (reload && !atomic_load(&main_milter_done))
			main_reload(gens, path, boot, debug);
	}
}

int
main(int argc, char **argv)
{
	const char *conf_path = DEFAULT_CONF;
	bool foreground = false, debug = false, test_only = false;
	struct conf *conf;
	struct confgen *gens = NULL;
	struct confgen_ref *boot = NULL;
	pthread_t milter_thread;
	struct store *store = NULL;
	struct intake *in = NULL;
	struct oauth *oauth = NULL;
	struct worker *worker = NULL;
	struct web *web = NULL;
	struct passwd *pw = NULL;
	struct statedir sd;
	struct statedir_keys keys;
	char err[1024];
	char hostname[256];
	unsigned requeued = 0, posting = 0;
	struct spooljob_recovery rec;
	int ch, nerrors = 0, rc = 1, milter_rc = 1;

	if (argc > 1 && strcmp(argv[1], "--help") == 0)
		usage(stdout, 0);
	while ((ch = getopt(argc, argv, "c:fdthV")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'f': foreground = true; break;
		case 'd': debug = true; break;
		case 't': test_only = true; break;
		case 'V': puts("halo-milter " HALO_MILTER_VERSION); return 0;
		case 'h': usage(stdout, 0);
		default: usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);

	conf = conf_load(conf_path, stderr, &nerrors);
	if (conf == NULL) {
		fprintf(stderr, "%s: %d error%s; %s\n", conf_path, nerrors,
		    nerrors == 1 ? "" : "s",
		    test_only ? "configuration is invalid" : "refusing to start");
		return 1;
	}
	if (test_only && main_check_strict(conf, conf_path, stderr) > 0) {
		fprintf(stderr, "%s: configuration is invalid\n", conf_path);
		conf_free(conf);
		return 1;
	}
	if (test_only) {
		printf("%s: configuration OK (%zu tenant%s)\n", conf_path,
		    conf->n_tenants, conf->n_tenants == 1 ? "" : "s");
		conf_free(conf);
		return 0;
	}

	log_open("halo-milter", main_log_dest(conf->log, foreground),
	    debug ? LOG_DEBUG : conf->log_level);
	/* generation 1; BOOT stays held to the end: what the daemon was
	 * built on (socket, workers, web server) keeps being read there */
	if ((gens = confgen_new(conf)) == NULL) {
		log_warnx("out of memory");
		conf_free(conf);
		return 1;
	}
	boot = confgen_acquire(gens);
	if (gethostname(hostname, sizeof(hostname)) != 0)
		strcpy(hostname, "localhost");
	hostname[sizeof(hostname) - 1] = '\0';

	if (conf->user != NULL) {
		pw = getpwnam(conf->user);
		if (pw == NULL) {
			log_warnx("user %s does not exist", conf->user);
			goto out;
		}
		if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid) {
			/* started as that user already (the systemd unit's
			 * User=): nothing to hand over or drop */
			pw = NULL;
		} else if (getuid() != 0) {
			log_warnx("user = %s needs halo-milter started as root"
			    " or as %s", conf->user, conf->user);
			goto out;
		}
	}
	if (statedir_init(&sd, conf->state_dir, conf->store, err,
	    sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto out;
	}
	if (main_mkdir(conf->state_dir, pw ? pw->pw_uid : 0,
	    pw ? pw->pw_gid : 0, pw != NULL) != 0)
		goto out;

	if (smfi_setconn(conf->socket) != MI_SUCCESS ||
	    smfi_register(*callbacks_desc()) != MI_SUCCESS) {
		log_warnx("cannot set up milter socket %s", conf->socket);
		goto out;
	}
	smfi_settimeout(300);
	if (smfi_opensocket(1) != MI_SUCCESS) {
		log_warnx("cannot open milter socket %s", conf->socket);
		goto out;
	}
	main_tcp_nodelay(conf->socket);
	if (pw != NULL && (strncmp(conf->socket, "unix:", 5) == 0 ||
	    strncmp(conf->socket, "local:", 6) == 0)) {
		const char *path = strchr(conf->socket, ':') + 1;
		if (chown(path, pw->pw_uid, pw->pw_gid) != 0 ||
		    chmod(path, 0660) != 0) {
			log_warn("cannot hand socket %s to %s", path, pw->pw_name);
			goto out;
		}
	}
	if (pw != NULL && main_drop_privileges(pw) != 0)
		goto out;

	/* the sealing key: created on first start, 0600, only ours; a
	 * missing or different key while tokens are sealed stops us here,
	 * before we detach, so the refusal reaches whoever started us */
	store = store_open(sd.store, err, sizeof(err));
	if (store == NULL) {
		log_warnx("cannot open store: %s", err);
		goto out;
	}
	if (keys_load_all(&sd, store, &keys, err, sizeof(err)) != 0) {
		if (!foreground)
			fprintf(stderr, "halo-milter: key: %s\n", err);
		log_warnx("key: %s", err);
		goto out;
	}
	store = store_close(store);

	/* fork before SQLite opens anything: its locks do not survive fork */
	if (!foreground && daemon(0, 0) != 0) {
		log_warn("daemon");
		goto out;
	}
	umask(077);
	store = store_open(sd.store, err, sizeof(err));
	if (store == NULL) {
		log_warnx("cannot open store: %s", err);
		goto out;
	}
	if (spool_init(sd.spool) != 0) {
		log_warn("cannot create spool %s", sd.spool);
		goto out;
	}
	/* rows a power cut lost come back from their files' trailers; then
	 * unfinished and orphaned files go */
	if (spooljob_recover(sd.spool, store, &rec) != 0) {
		log_warn("spool recovery: cannot read %s or the store", sd.spool);
		goto out;
	}
	if (rec.restored || rec.damaged)
		log_notice("spool recovery: the jobs of %u message%s restored"
		    " from the spool (their commit was lost), %u file%s"
		    " unreadable", rec.restored, rec.restored == 1 ? "" : "s",
		    rec.damaged, rec.damaged == 1 ? "" : "s");
	if (rec.tmp_removed || rec.orphans)
		log_notice("spool recovery: removed %u unfinished and %u orphaned"
		    " files", rec.tmp_removed, rec.orphans);
	if (store_jobs_reset_running(store, WORKER_POST_GRACE, &requeued,
	    &posting) == STORE_OK && requeued > 0)
		log_notice("recovery: %u job%s interrupted by a stop queued again",
		    requeued, requeued == 1 ? "" : "s");
	if (posting > 0)
		log_notice("recovery: %u of them %s posting: checked in Halo %d s"
		    " after it began (a request may still be in flight)", posting,
		    posting == 1 ? "was" : "were", WORKER_POST_GRACE);

	/*
	 * libmilter's signal thread (started by smfi_main) takes SIGTERM
	 * and SIGINT with sigwait() and stops cleanly; SIGHUP is the main
	 * thread's (main_serve). The worker and web threads start before it:
	 * block the three here, so that they inherit the mask and a signal
	 * never lands in one of them (a stop signal would kill the process
	 * without "stopping" or a clean shutdown of the workers).
	 */
	if (main_sigmask(SIG_BLOCK, true) != 0 || main_reload_signal_init() != 0)
		goto out;
	oauth = oauth_new(store, keys.seal);
	in = intake_new(conf, store, sd.spool, hostname, keys.status);
	if (oauth == NULL || in == NULL) {
		log_warnx("out of memory");
		goto out;
	}
	if (conf->workers > 0 &&
	    (worker = worker_start(conf, store, oauth, sd.spool, 0)) == NULL) {
		log_warnx("cannot start worker threads");
		goto out;
	}
	if (conf->web_listen != NULL &&
	    (web = web_start(conf, store, oauth, &sd, &keys, err,
	    sizeof(err))) == NULL) {
		log_warnx("cannot start the web server: %s", err);
		goto out;
	}
	intake_set_confgen(in, gens);
	worker_set_confgen(worker, gens);
	web_set_confgen(web, gens);
	callbacks_set_intake(in, worker);
	log_info("started: socket %s, state %s, %zu tenant%s, %u worker%s,"
	    " web %s, schema v%d", conf->socket, conf->state_dir,
	    conf->n_tenants, conf->n_tenants == 1 ? "" : "s", conf->workers,
	    conf->workers == 1 ? "" : "s",
	    conf->web_listen != NULL ? conf->web_listen : "off",
	    store_schema_version(store));
	worker_log_join_policy(conf);
	/* SIGHUP now reloads (main_serve); the threads started from here
	 * on block it themselves */
	if (main_sigmask(SIG_UNBLOCK, false) != 0)
		goto out;
	if ((errno = pthread_create(&milter_thread, NULL, main_milter_thread,
	    &milter_rc)) != 0) {
		log_warn("cannot start the milter thread");
		goto out;
	}
	/* systemd's Type=notify: up now (a no-op without $NOTIFY_SOCKET) */
	(void)sd_notify(0, "READY=1\nSTATUS=serving");
	main_serve(gens, conf_path, conf, debug);
	pthread_join(milter_thread, NULL);
	rc = milter_rc;
	(void)sd_notify(0, "STOPPING=1");
	log_info("stopping");
out:
	statedir_keys_wipe(&keys);
	web = web_stop(web);
	worker = worker_stop(worker);
	oauth = oauth_free(oauth);
	intake_free(in);
	store_close(store);
	confgen_release(boot);
	confgen_free(gens);
	return rc;
}
