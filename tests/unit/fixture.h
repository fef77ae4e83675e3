/*
 * fixture.h - a temporary directory per unit test: made under $TMPDIR
 * (default /tmp) and removed with everything in it. Header-only (static
 * inline functions): each test is one translation unit.
 */
#ifndef HALO_TEST_FIXTURE_H
#define HALO_TEST_FIXTURE_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* nftw callback: remove one entry, deepest first. */
static inline int
fixture_rm_entry(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP || type == FTW_D)
		return rmdir(path) == 0 ? 0 : 1;
	return unlink(path) == 0 ? 0 : 1;
}

/* Remove DIR and everything below it (links are not followed); 0, or -1
 * when something stayed. */
static inline int
fixture_dir_remove(const char *dir)
{
	return nftw(dir, fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ?
	    0 : -1;
}

#endif
