/*
 * web_admin.c - the admin part of the web server (not built yet).
 */
#include "web_int.h"

/* Nothing is routed here yet. */
bool
web_admin_route(const struct web_call *call, enum MHD_Result *rc)
{
	(void)call;
	(void)rc;
	return false;
}
