/*
 * simhelper.h - start and stop the Halo simulator (tests/halosim) from a
 * cmocka test: free ports, a ready file, output to a log in a temporary
 * directory, killed with the test process (PR_SET_PDEATHSIG).
 * Header-only (static functions): each test is one translation unit.
 */
#ifndef HALO_TEST_SIMHELPER_H
#define HALO_TEST_SIMHELPER_H

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>

#include <cjson/cJSON.h>

#include "http.h"

/* A running simulator. */
struct sim {
	pid_t pid;
	const char *tag;        /* names the temporary directory */
	char dir[PATH_MAX];
	char ready[PATH_MAX + 16];
	char log[PATH_MAX + 16];
	char fixture[PATH_MAX];
	int port, auth_port;
	char base[64];          /* http://127.0.0.1:PORT */
	char auth[64];          /* http://127.0.0.1:AUTHPORT */
};

/* Read FILE into a malloc'd string, or NULL. */
static char *
slurp(const char *file)
{
	FILE *f = fopen(file, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 1 << 20);
	if (buf != NULL) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

/* Start halosim on free ports; wait for its ready file. */
static int
sim_start(struct sim *s, const char *tag)
{
	const char *src = getenv("HALO_SRCDIR"), *tmp = getenv("TMPDIR");
	char script[PATH_MAX];
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	int i;

	s->tag = tag;
	if (src == NULL || *src == '\0')
		src = ".";
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(script, sizeof(script), "%s/tests/halosim/halosim.py", src);
	snprintf(s->fixture, sizeof(s->fixture), "%s/tests/halosim/fixture.json", src);
	snprintf(s->dir, sizeof(s->dir), "%s/%s.XXXXXX", tmp, s->tag);
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(s->ready, sizeof(s->ready), "%s/ready.json", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/halosim.log", s->dir);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execlp("python3", "python3", script, "--port", "0", "--auth-port", "0",
		    "--fixture", s->fixture, "--ready-file", s->ready, "--quiet", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 1500; i++) {        /* 30 s */
		int status;
		char *txt;
		cJSON *j;

		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			txt = slurp(s->log);
			fprintf(stderr, "halosim exited early:\n%s\n", txt ? txt : "");
			free(txt);
			return -1;
		}
		if (access(s->ready, R_OK) == 0 && (txt = slurp(s->ready)) != NULL) {
			j = cJSON_Parse(txt);
			free(txt);
			if (j != NULL) {
				const cJSON *p = cJSON_GetObjectItem(j, "port");
				const cJSON *a = cJSON_GetObjectItem(j, "auth_port");
				if (cJSON_IsNumber(p) && cJSON_IsNumber(a)) {
					s->port = p->valueint;
					s->auth_port = a->valueint;
					cJSON_Delete(j);
					snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
					snprintf(s->auth, sizeof(s->auth), "http://127.0.0.1:%d",
					    s->auth_port);
					return 0;
				}
				cJSON_Delete(j);
			}
		}
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* Stop the simulator and remove its directory. */
static void
sim_stop(struct sim *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	unlink(s->ready);
	unlink(s->log);
	rmdir(s->dir);
}

/* The simulator a test program runs for its whole group (sim_group_setup
 * and sim_group_teardown as cmocka's group fixtures). */
static struct sim sim;

/* Group set-up: HTTP to the loopback simulator allowed, the simulator
 * started in a directory named after the test program. */
static inline int
sim_group_setup(void **state)
{
	(void)state;
	http_global_init();
	http_allow_loopback_http(true);
	return sim_start(&sim, program_invocation_short_name);
}

static inline int
sim_group_teardown(void **state)
{
	(void)state;
	sim_stop(&sim);
	return 0;
}

/*
 * POST JSON BODY to PATH on S's resource port (a control route such as
 * /_sim/token or /_sim/reset); the parsed answer, NULL unless 2xx JSON.
 * Needs http.h (http_global_init() and loopback HTTP allowed).
 */
static inline cJSON *
sim_post(const struct sim *s, const char *path, const char *body)
{
	struct http_request req = { 0 };
	struct http_response resp;
	char url[512];
	cJSON *j = NULL;

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	req.total_timeout_ms = 10000;
	req.max_response = 16 << 20;
	if (http_do(&req, &resp) == HTTP_OK)
		j = cJSON_ParseWithLength(resp.body, resp.body_len);
	http_response_clear(&resp);
	return j;
}

/* A fresh access token for AGENT (all scopes) from S; malloc'd, or NULL. */
static inline char *
sim_access_token(const struct sim *s, const char *agent)
{
	char body[256];
	const cJSON *a;
	char *token = NULL;
	cJSON *j;

	snprintf(body, sizeof(body), "{\"agent_email\":\"%s\",\"scope\":"
	    "\"all offline_access\"}", agent);
	if ((j = sim_post(s, "/_sim/token", body)) == NULL)
		return NULL;
	a = cJSON_GetObjectItem(j, "access_token");
	if (cJSON_IsString(a))
		token = strdup(a->valuestring);
	cJSON_Delete(j);
	return token;
}

#endif
