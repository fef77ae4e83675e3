/*
 * callbacks.h - the libmilter callback table over intake.c.
 */
#ifndef HALO_CALLBACKS_H
#define HALO_CALLBACKS_H

#include <libmilter/mfapi.h>

#include "intake.h"
#include "worker.h"

/* Set the intake every callback uses, and the worker to wake when a job
 * was queued (may be NULL), before smfi_main. */
void callbacks_set_intake(struct intake *in, struct worker *worker);

/* The filter description to hand to smfi_register. */
struct smfiDesc *callbacks_desc(void);

#endif
