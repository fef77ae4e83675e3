/*
 * manifest.h - the Outlook add-in manifests of one deployment: the XML
 * add-in manifest (MailApp) and the unified manifest for Microsoft 365
 * (Teams schema v1.17 with an Outlook extension). Pure: configuration in,
 * text out; "halo-milterctl manifest" and the web server share it, so what
 * the CLI writes is byte for byte what PUBLIC_URL/manifest.* serves.
 *
 * Every URL comes from public_url (the pane at /pane/taskpane.html, icons at
 * /pane/icons/icon-N.png). The add-in's id is a UUID made from a hash of
 * public_url (and the tenant, when one is given), so it is stable across
 * runs and hosts and differs between deployments.
 */
#ifndef HALO_MANIFEST_H
#define HALO_MANIFEST_H

#include "conf.h"

enum manifest_format {
	MANIFEST_XML,
	MANIFEST_JSON
};

/* Icon sizes served under /pane/icons/ (icon-N.png). */
#define MANIFEST_ICON_SIZES { 16, 32, 64, 80, 128 }

/*
 * The manifest of CONF's deployment in FORMAT, for TENANT (NULL: one add-in
 * for every tenant), malloc'd. NULL with a message in ERR when public_url
 * is not set, the tenant is unknown, or memory ran out.
 */
char *manifest_build(const struct conf *conf, enum manifest_format format,
    const char *tenant, char *err, size_t errsz);

/* The add-in's id for PUBLIC_URL and TENANT (may be NULL): a UUID text
 * (36 characters + NUL). 0 or -1. */
int manifest_id(const char *public_url, const char *tenant, char out[37]);

#endif
