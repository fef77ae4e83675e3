/*
 * confgen.h - configuration generations for live reload.
 *
 * The daemon's configuration is a read-only tree (conf.h). A reload does
 * not change it: it loads a new tree and publishes it as the next
 * generation. Each user (a message in intake, a job in the worker, a web
 * request) takes a reference to the generation current when it starts and
 * drops it when done, so it sees one configuration from start to end. A
 * generation is freed when it is no longer current and its last user has
 * dropped it. Thread-safe: one lock per holder, held only to count.
 */
#ifndef HALO_CONFGEN_H
#define HALO_CONFGEN_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct confgen;         /* the holder: which generation is current */
struct confgen_ref;     /* one generation, counted */

/* A holder whose generation 1 is CONF (taken over: freed with the last
 * reference). NULL on allocation failure (CONF is then still the
 * caller's). */
struct confgen *confgen_new(struct conf *conf);

/* Free the holder and its current generation; every reference must have
 * been released. NULL is accepted; returns NULL. */
struct confgen *confgen_free(struct confgen *cg);

/* A reference to the current generation (never NULL). */
struct confgen_ref *confgen_acquire(struct confgen *cg);

/* Drop REF (NULL is accepted); frees its generation when it was the last
 * user of one that is no longer current. Returns NULL. */
struct confgen_ref *confgen_release(struct confgen_ref *ref);

/* The configuration of REF's generation, valid until REF is released. */
const struct conf *confgen_conf(const struct confgen_ref *ref);

/* REF's generation number (1 for the first). */
uint64_t confgen_number(const struct confgen_ref *ref);

/* Make CONF (taken over) the current generation; the previous one is
 * freed once its users are done. Returns the new generation's number, or
 * 0 on allocation failure (CONF is then still the caller's and nothing
 * changed). */
uint64_t confgen_publish(struct confgen *cg, struct conf *conf);

/* Generations not freed yet (the current one included), for logs and
 * tests. */
size_t confgen_live(struct confgen *cg);

#endif
