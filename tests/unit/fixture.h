/*
 * fixture.h - a temporary directory per unit test: made under $TMPDIR
 * (default /tmp) and removed with the files in it. Header-only (static
 * inline functions): each test is one translation unit.
 */
#ifndef HALO_TEST_FIXTURE_H
#define HALO_TEST_FIXTURE_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Make DIR (PATH_MAX bytes) as $TMPDIR/TAG.XXXXXX; 0 or -1. */
static inline int
fixture_dir_make(char dir[PATH_MAX], const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, PATH_MAX, "%s/%s.XXXXXX", tmp, tag);
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Remove DIR and the files directly in it. */
static inline void
fixture_dir_remove(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			char path[PATH_MAX * 2];
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", dir,
			    de->d_name) < (int)sizeof(path))
				unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

#endif
