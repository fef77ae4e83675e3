/*
 * fuzz_conf.c - libFuzzer target for the configuration parser (conf.c): the
 * input is the whole file (an operator's typo is untrusted input too),
 * loaded through a memfd. A load either fails with errors counted or gives
 * a configuration that is checked for what its users rely on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct conf *c;
	char path[64];
	size_t i, j;
	int fd, nerr = 0;

	if (size > 65536)
		return 0;
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	fd = memfd_create("fuzz-conf", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = conf_load(path, devnull, &nerr);
	close(fd);
	if (c == NULL) {
		if (nerr <= 0)
			abort();        /* a refusal always says why */
		return 0;
	}
	if (nerr != 0 || c->socket == NULL || c->state_dir == NULL)
		abort();
	for (i = 0; i < c->n_tenants; i++) {
		const struct conf_tenant *t = c->tenants[i];

		if (t->name == NULL || t->halo_url == NULL || t->client_id == NULL ||
		    t->ticket_type_id <= 0 || t->rate_limit == 0)
			abort();
		for (j = 0; j < t->n_routes; j++)
			if (t->routes[j] == NULL)
				abort();
	}
	conf_free(c);
	return 0;
}
