/*
 * confgen.c - configuration generations: refcounted, swapped on reload.
 */
#include "confgen.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct confgen_ref {
	struct confgen *cg;         /* the holder, for its lock */
	struct conf *conf;          /* owned */
	uint64_t number;
	size_t users;               /* references; the holder's counts as one
	                               while the generation is current */
};

struct confgen {
	pthread_mutex_t lock;       /* guards current, every users count, live */
	struct confgen_ref *current;
	uint64_t next_number;
	size_t live;
};

/* A generation for CONF with the holder's reference, or NULL. */
static struct confgen_ref *
confgen_gen_new(struct confgen *cg, struct conf *conf, uint64_t number)
{
	struct confgen_ref *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->cg = cg;
	g->conf = conf;
	g->number = number;
	g->users = 1;
	return g;
}

/* Drop one use of G under the holder's lock; true when G must be freed. */
static bool
confgen_unuse_locked(struct confgen_ref *g)
{
	if (--g->users > 0)
		return false;
	g->cg->live--;
	return true;
}

/* Free a generation nobody uses (outside the lock). */
static void
confgen_gen_free(struct confgen_ref *g)
{
	conf_free(g->conf);
	free(g);
}

/* The holder. */
struct confgen *
confgen_new(struct conf *conf)
{
	struct confgen *cg = calloc(1, sizeof(*cg));

	if (cg == NULL)
		return NULL;
	if ((cg->current = confgen_gen_new(cg, conf, 1)) == NULL) {
		free(cg);
		return NULL;
	}
	pthread_mutex_init(&cg->lock, NULL);
	cg->next_number = 2;
	cg->live = 1;
	return cg;
}

/* Free the holder. */
struct confgen *
confgen_free(struct confgen *cg)
{
	bool last;

	if (cg == NULL)
		return NULL;
	pthread_mutex_lock(&cg->lock);
	last = confgen_unuse_locked(cg->current);
	pthread_mutex_unlock(&cg->lock);
	if (last)
		confgen_gen_free(cg->current);
	pthread_mutex_destroy(&cg->lock);
	free(cg);
	return NULL;
}

/* A reference to the current generation. */
struct confgen_ref *
confgen_acquire(struct confgen *cg)
{
	struct confgen_ref *g;

	pthread_mutex_lock(&cg->lock);
	g = cg->current;
	g->users++;
	pthread_mutex_unlock(&cg->lock);
	return g;
}

/* Drop a reference. */
struct confgen_ref *
confgen_release(struct confgen_ref *ref)
{
	struct confgen *cg;
	bool last;

	if (ref == NULL)
		return NULL;
	cg = ref->cg;
	pthread_mutex_lock(&cg->lock);
	last = confgen_unuse_locked(ref);
	pthread_mutex_unlock(&cg->lock);
	if (last)
		confgen_gen_free(ref);
	return NULL;
}

/* The configuration of a reference. */
const struct conf *
confgen_conf(const struct confgen_ref *ref)
{
	return ref->conf;
}

/* The generation number of a reference. */
uint64_t
confgen_number(const struct confgen_ref *ref)
{
	return ref->number;
}

/* Publish a new generation. */
uint64_t
confgen_publish(struct confgen *cg, struct conf *conf)
{
	struct confgen_ref *g, *old;
	uint64_t number;
	bool last;

	if ((g = confgen_gen_new(cg, conf, 0)) == NULL)
		return 0;
	pthread_mutex_lock(&cg->lock);
	number = g->number = cg->next_number++;
	old = cg->current;
	cg->current = g;
	cg->live++;
	last = confgen_unuse_locked(old);
	pthread_mutex_unlock(&cg->lock);
	if (last)
		confgen_gen_free(old);
	return number;
}

/* How many generations are alive. */
size_t
confgen_live(struct confgen *cg)
{
	size_t n;

	pthread_mutex_lock(&cg->lock);
	n = cg->live;
	pthread_mutex_unlock(&cg->lock);
	return n;
}
