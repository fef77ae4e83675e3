/*
 * manifest.c - the Outlook add-in manifests (see manifest.h).
 */
#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"

#define MANIFEST_VERSION_XML  "1.0.0.0"
#define MANIFEST_VERSION_JSON "1.0.0"
#define MANIFEST_NAME         "Halo ticket status"
#define MANIFEST_SHORT        "What halo-milter logged in HaloPSA for this" \
	" message."
#define MANIFEST_LONG         "Shows, for the open message, what the mail" \
	" gateway logged in HaloPSA: the sender's contact or client, the" \
	" ticket (with a link to open it in Halo), and whether the message" \
	" was appended, created, queued, skipped or failed. Signed in to" \
	" Halo, an agent sees the client's open tickets and adds the mail" \
	" to one, creates a ticket, assigns it, changes its status or moves" \
	" a mis-filed mail, under their own Halo account."
#define MANIFEST_BUTTON       "Halo status"
#define MANIFEST_TIP          "Show the HaloPSA ticket this message was" \
	" logged to."

static const int manifest_icon_sizes[] = MANIFEST_ICON_SIZES;

/* The add-in's id: an RFC 4122 variant UUID (version 5 layout) from an
 * HMAC of public_url and tenant under a fixed label, so it is stable. */
int
manifest_id(const char *public_url, const char *tenant, char out[37])
{
	static const char label[] = "halo-milter add-in id v1";
	uint8_t mac[CRYPTO_HMAC_LEN];
	char *data = NULL;
	int n, i, o = 0;

	out[0] = '\0';
	if (public_url == NULL)
		return -1;
	n = asprintf(&data, "%s\n%s", public_url, tenant != NULL ? tenant : "");
	if (n < 0)
		return -1;
	if (crypto_hmac((const uint8_t *)label, sizeof(label) - 1, data,
	    (size_t)n, mac) != 0) {
		free(data);
		return -1;
	}
	free(data);
	mac[6] = (uint8_t)((mac[6] & 0x0f) | 0x50);
	mac[8] = (uint8_t)((mac[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		o += snprintf(out + o, 37 - (size_t)o, "%02x", mac[i]);
	}
	return 0;
}

/* S with XML's five special characters as entities. */
static void
manifest_xml_escape(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': fputs("&amp;", fp); break;
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '"': fputs("&quot;", fp); break;
		case '\'': fputs("&apos;", fp); break;
		default: fputc(*s, fp);
		}
	}
}

/* One element or attribute value: PREFIX, escaped VALUE, SUFFIX. */
static void
manifest_xml_line(FILE *fp, const char *prefix, const char *value,
    const char *suffix)
{
	fputs(prefix, fp);
	manifest_xml_escape(fp, value);
	fputs(suffix, fp);
}

/*
 * What the pane uses, and why the manifests ask for no more than Mailbox
 * 1.3 and ReadItem: internetMessageId, from, subject (1.1), body.getAsync
 * (1.3) and the add-in commands (1.3) are the floor; headers
 * (getAllInternetHeadersAsync, 1.8), ItemChanged for a pinned pane (1.5)
 * and the sign-in dialog (Office.context.ui.displayDialogAsync, DialogApi
 * 1.1) are detected at run time, each with its own message where the host
 * lacks it, so older hosts still get the pane. Every call is a read of the
 * open item: ReadItem covers them (the pane writes to Halo, never to the
 * mailbox).
 */

/* The command surface of a VersionOverrides block (1.0 or 1.1: only 1.1
 * knows SupportsPinning). */
static void
manifest_xml_overrides(FILE *fp, const char *base, bool v11)
{
	char url[2200];
	size_t i;

	fputs("      <Requirements>\n"
	    "        <bt:Sets DefaultMinVersion=\"1.3\">\n"
	    "          <bt:Set Name=\"Mailbox\"/>\n"
	    "        </bt:Sets>\n"
	    "      </Requirements>\n"
	    "      <Hosts>\n"
	    "        <Host xsi:type=\"MailHost\">\n"
	    "          <DesktopFormFactor>\n"
	    "            <ExtensionPoint xsi:type=\"MessageReadCommandSurface\">\n"
	    "              <OfficeTab id=\"TabDefault\">\n"
	    "                <Group id=\"haloReadGroup\">\n"
	    "                  <Label resid=\"Group.Label\"/>\n"
	    "                  <Control xsi:type=\"Button\" id=\"haloReadPaneButton\">\n"
	    "                    <Label resid=\"Button.Label\"/>\n"
	    "                    <Supertip>\n"
	    "                      <Title resid=\"Button.Label\"/>\n"
	    "                      <Description resid=\"Button.Tooltip\"/>\n"
	    "                    </Supertip>\n"
	    "                    <Icon>\n"
	    "                      <bt:Image size=\"16\" resid=\"Icon.16\"/>\n"
	    "                      <bt:Image size=\"32\" resid=\"Icon.32\"/>\n"
	    "                      <bt:Image size=\"80\" resid=\"Icon.80\"/>\n"
	    "                    </Icon>\n"
	    "                    <Action xsi:type=\"ShowTaskpane\">\n"
	    "                      <SourceLocation resid=\"Taskpane.Url\"/>\n", fp);
	if (v11)
		fputs("                      <SupportsPinning>true</SupportsPinning>\n",
		    fp);
	fputs("                    </Action>\n"
	    "                  </Control>\n"
	    "                </Group>\n"
	    "              </OfficeTab>\n"
	    "            </ExtensionPoint>\n"
	    "          </DesktopFormFactor>\n"
	    "        </Host>\n"
	    "      </Hosts>\n"
	    "      <Resources>\n"
	    "        <bt:Images>\n", fp);
	for (i = 0; i < sizeof(manifest_icon_sizes) / sizeof(int); i++) {
		if (manifest_icon_sizes[i] != 16 && manifest_icon_sizes[i] != 32 &&
		    manifest_icon_sizes[i] != 80)
			continue;
		snprintf(url, sizeof(url), "%s/pane/icons/icon-%d.png", base,
		    manifest_icon_sizes[i]);
		fprintf(fp, "          <bt:Image id=\"Icon.%d\" DefaultValue=\"",
		    manifest_icon_sizes[i]);
		manifest_xml_line(fp, "", url, "\"/>\n");
	}
	fputs("        </bt:Images>\n"
	    "        <bt:Urls>\n", fp);
	snprintf(url, sizeof(url), "%s/pane/taskpane.html", base);
	manifest_xml_line(fp, "          <bt:Url id=\"Taskpane.Url\" DefaultValue=\"",
	    url, "\"/>\n");
	fputs("        </bt:Urls>\n"
	    "        <bt:ShortStrings>\n"
	    "          <bt:String id=\"Group.Label\" DefaultValue=\"HaloPSA\"/>\n"
	    "          <bt:String id=\"Button.Label\" DefaultValue=\""
	    MANIFEST_BUTTON "\"/>\n"
	    "        </bt:ShortStrings>\n"
	    "        <bt:LongStrings>\n"
	    "          <bt:String id=\"Button.Tooltip\" DefaultValue=\""
	    MANIFEST_TIP "\"/>\n"
	    "        </bt:LongStrings>\n"
	    "      </Resources>\n", fp);
}

/* The XML add-in manifest. */
static char *
manifest_xml(const char *base, const char *origin, const char *id,
    const char *name)
{
	char *text = NULL, url[2200];
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return NULL;
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<!-- halo-milter's Outlook add-in; made by"
	    " \"halo-milterctl manifest\" -->\n"
	    "<OfficeApp xmlns=\"http://schemas.microsoft.com/office/appforoffice/1.1\"\n"
	    "    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
	    "    xmlns:bt=\"http://schemas.microsoft.com/office/officeappbasictypes/1.0\"\n"
	    "    xmlns:mailappor=\"http://schemas.microsoft.com/office/mailappversionoverrides/1.0\"\n"
	    "    xsi:type=\"MailApp\">\n", fp);
	manifest_xml_line(fp, "  <Id>", id, "</Id>\n");
	fputs("  <Version>" MANIFEST_VERSION_XML "</Version>\n"
	    "  <ProviderName>halo-milter</ProviderName>\n"
	    "  <DefaultLocale>en-US</DefaultLocale>\n", fp);
	manifest_xml_line(fp, "  <DisplayName DefaultValue=\"", name, "\"/>\n");
	fputs("  <Description DefaultValue=\"" MANIFEST_SHORT "\"/>\n", fp);
	snprintf(url, sizeof(url), "%s/pane/icons/icon-64.png", base);
	manifest_xml_line(fp, "  <IconUrl DefaultValue=\"", url, "\"/>\n");
	snprintf(url, sizeof(url), "%s/pane/icons/icon-128.png", base);
	manifest_xml_line(fp, "  <HighResolutionIconUrl DefaultValue=\"", url,
	    "\"/>\n");
	snprintf(url, sizeof(url), "%s/", base);
	manifest_xml_line(fp, "  <SupportUrl DefaultValue=\"", url, "\"/>\n");
	manifest_xml_line(fp, "  <AppDomains>\n    <AppDomain>", origin,
	    "</AppDomain>\n  </AppDomains>\n");
	fputs("  <Hosts>\n    <Host Name=\"Mailbox\"/>\n  </Hosts>\n"
	    "  <Requirements>\n    <Sets>\n"
	    "      <Set Name=\"Mailbox\" MinVersion=\"1.1\"/>\n"
	    "    </Sets>\n  </Requirements>\n"
	    "  <FormSettings>\n    <Form xsi:type=\"ItemRead\">\n"
	    "      <DesktopSettings>\n", fp);
	snprintf(url, sizeof(url), "%s/pane/taskpane.html", base);
	manifest_xml_line(fp, "        <SourceLocation DefaultValue=\"", url,
	    "\"/>\n");
	fputs("        <RequestedHeight>250</RequestedHeight>\n"
	    "      </DesktopSettings>\n    </Form>\n  </FormSettings>\n"
	    "  <Permissions>ReadItem</Permissions>\n"
	    "  <Rule xsi:type=\"RuleCollection\" Mode=\"Or\">\n"
	    "    <Rule xsi:type=\"ItemIs\" ItemType=\"Message\" FormType=\"Read\"/>\n"
	    "  </Rule>\n"
	    "  <DisableEntityHighlighting>false</DisableEntityHighlighting>\n"
	    "  <VersionOverrides xmlns=\"http://schemas.microsoft.com/office/mailappversionoverrides\""
	    " xsi:type=\"VersionOverridesV1_0\">\n", fp);
	manifest_xml_overrides(fp, base, false);
	fputs("    <VersionOverrides xmlns=\"http://schemas.microsoft.com/office/mailappversionoverrides/1.1\""
	    " xsi:type=\"VersionOverridesV1_1\">\n", fp);
	manifest_xml_overrides(fp, base, true);
	fputs("    </VersionOverrides>\n"
	    "  </VersionOverrides>\n"
	    "</OfficeApp>\n", fp);
	if (ferror(fp)) {
		fclose(fp);
		free(text);
		return NULL;
	}
	fclose(fp);
	return text;
}

/* [{size, url}] for SIZES of the ribbon (16, 32, 80). */
static cJSON *
manifest_json_icons(const char *base)
{
	static const int sizes[] = { 16, 32, 80 };
	cJSON *arr = cJSON_CreateArray(), *icon;
	char url[2200];
	size_t i;

	for (i = 0; arr != NULL && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(url, sizeof(url), "%s/pane/icons/icon-%d.png", base,
		    sizes[i]);
		icon = cJSON_CreateObject();
		if (icon == NULL)
			break;
		cJSON_AddNumberToObject(icon, "size", sizes[i]);
		cJSON_AddStringToObject(icon, "url", url);
		cJSON_AddItemToArray(arr, icon);
	}
	return arr;
}

/* The unified manifest (Teams schema v1.17 with an Outlook extension). */
static char *
manifest_json(const char *base, const char *origin, const char *id,
    const char *name)
{
	cJSON *root = cJSON_CreateObject(), *o, *ext, *arr, *req, *caps, *cap;
	cJSON *rt, *act, *rib, *tab, *grp, *ctl;
	char url[2200], *text;
	const char *host = strstr(origin, "://") != NULL ?
	    strstr(origin, "://") + 3 : origin;

	if (root == NULL)
		return NULL;
	cJSON_AddStringToObject(root, "$schema", "https://developer.microsoft.com"
	    "/json-schemas/teams/v1.17/MicrosoftTeams.schema.json");
	cJSON_AddStringToObject(root, "manifestVersion", "1.17");
	cJSON_AddStringToObject(root, "version", MANIFEST_VERSION_JSON);
	cJSON_AddStringToObject(root, "id", id);
	o = cJSON_AddObjectToObject(root, "developer");
	cJSON_AddStringToObject(o, "name", "halo-milter");
	snprintf(url, sizeof(url), "%s/", base);
	cJSON_AddStringToObject(o, "websiteUrl", url);
	cJSON_AddStringToObject(o, "privacyUrl", url);
	cJSON_AddStringToObject(o, "termsOfUseUrl", url);
	o = cJSON_AddObjectToObject(root, "name");
	cJSON_AddStringToObject(o, "short", name);
	cJSON_AddStringToObject(o, "full", name);
	o = cJSON_AddObjectToObject(root, "description");
	cJSON_AddStringToObject(o, "short", MANIFEST_SHORT);
	cJSON_AddStringToObject(o, "full", MANIFEST_LONG);
	/* app-package files: upload the package with these two beside it */
	o = cJSON_AddObjectToObject(root, "icons");
	cJSON_AddStringToObject(o, "outline", "icon-outline.png");
	cJSON_AddStringToObject(o, "color", "icon-color.png");
	cJSON_AddStringToObject(root, "accentColor", "#2457C5");
	arr = cJSON_AddArrayToObject(root, "validDomains");
	cJSON_AddItemToArray(arr, cJSON_CreateString(host));
	o = cJSON_AddObjectToObject(root, "authorization");
	o = cJSON_AddObjectToObject(o, "permissions");
	arr = cJSON_AddArrayToObject(o, "resourceSpecific");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "MailboxItem.Read.User");
	cJSON_AddStringToObject(o, "type", "Delegated");
	cJSON_AddItemToArray(arr, o);

	arr = cJSON_AddArrayToObject(root, "extensions");
	ext = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, ext);
	req = cJSON_AddObjectToObject(ext, "requirements");
	o = cJSON_AddArrayToObject(req, "scopes");
	cJSON_AddItemToArray(o, cJSON_CreateString("mail"));
	caps = cJSON_AddArrayToObject(req, "capabilities");
	cap = cJSON_CreateObject();
	cJSON_AddStringToObject(cap, "name", "Mailbox");
	cJSON_AddStringToObject(cap, "minVersion", "1.3");
	cJSON_AddItemToArray(caps, cap);

	arr = cJSON_AddArrayToObject(ext, "runtimes");
	rt = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, rt);
	cJSON_AddStringToObject(rt, "id", "TaskPaneRuntime");
	cJSON_AddStringToObject(rt, "type", "general");
	o = cJSON_AddObjectToObject(rt, "code");
	snprintf(url, sizeof(url), "%s/pane/taskpane.html", base);
	cJSON_AddStringToObject(o, "page", url);
	cJSON_AddStringToObject(rt, "lifetime", "short");
	o = cJSON_AddArrayToObject(rt, "actions");
	act = cJSON_CreateObject();
	cJSON_AddItemToArray(o, act);
	cJSON_AddStringToObject(act, "id", "ShowHaloPane");
	cJSON_AddStringToObject(act, "type", "openPage");
	cJSON_AddStringToObject(act, "displayName", MANIFEST_BUTTON);
	cJSON_AddBoolToObject(act, "pinnable", true);

	arr = cJSON_AddArrayToObject(ext, "ribbons");
	rib = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, rib);
	o = cJSON_AddArrayToObject(rib, "contexts");
	cJSON_AddItemToArray(o, cJSON_CreateString("mailRead"));
	o = cJSON_AddArrayToObject(rib, "tabs");
	tab = cJSON_CreateObject();
	cJSON_AddItemToArray(o, tab);
	cJSON_AddStringToObject(tab, "builtInTabId", "TabDefault");
	o = cJSON_AddArrayToObject(tab, "groups");
	grp = cJSON_CreateObject();
	cJSON_AddItemToArray(o, grp);
	cJSON_AddStringToObject(grp, "id", "haloReadGroup");
	cJSON_AddStringToObject(grp, "label", "HaloPSA");
	cJSON_AddItemToObject(grp, "icons", manifest_json_icons(base));
	o = cJSON_AddArrayToObject(grp, "controls");
	ctl = cJSON_CreateObject();
	cJSON_AddItemToArray(o, ctl);
	cJSON_AddStringToObject(ctl, "id", "haloReadPaneButton");
	cJSON_AddStringToObject(ctl, "type", "button");
	cJSON_AddStringToObject(ctl, "label", MANIFEST_BUTTON);
	cJSON_AddItemToObject(ctl, "icons", manifest_json_icons(base));
	o = cJSON_AddObjectToObject(ctl, "supertip");
	cJSON_AddStringToObject(o, "title", MANIFEST_BUTTON);
	cJSON_AddStringToObject(o, "description", MANIFEST_TIP);
	cJSON_AddStringToObject(ctl, "actionId", "ShowHaloPane");

	text = cJSON_Print(root);
	cJSON_Delete(root);
	return text;
}

/* The manifest of CONF's deployment. */
char *
manifest_build(const struct conf *conf, enum manifest_format format,
    const char *tenant, char *err, size_t errsz)
{
	char id[37], name[128], origin[2048], *base, *text, *sep, *end;
	size_t n;

	if (conf->public_url == NULL) {
		snprintf(err, errsz, "public_url is not set: the pane's address"
		    " comes from it");
		return NULL;
	}
	if (tenant != NULL) {
		if (conf_tenant_find(conf, tenant) == NULL) {
			snprintf(err, errsz, "no tenant '%s' in the configuration",
			    tenant);
			return NULL;
		}
	}
	/* public_url without a trailing '/', and its origin */
	n = strlen(conf->public_url);
	while (n > 0 && conf->public_url[n - 1] == '/')
		n--;
	if (n >= sizeof(origin) || (base = strndup(conf->public_url, n)) ==
	    NULL) {
		snprintf(err, errsz, "public_url is too long");
		return NULL;
	}
	snprintf(origin, sizeof(origin), "%s", base);
	if ((sep = strstr(origin, "://")) != NULL &&
	    (end = strchr(sep + 3, '/')) != NULL)
		*end = '\0';
	if (manifest_id(base, tenant, id) != 0) {
		free(base);
		snprintf(err, errsz, "cannot derive the add-in id");
		return NULL;
	}
	if (tenant != NULL)
		snprintf(name, sizeof(name), "Halo status (%.16s)", tenant);
	else
		snprintf(name, sizeof(name), "%s", MANIFEST_NAME);
	text = format == MANIFEST_XML ? manifest_xml(base, origin, id, name) :
	    manifest_json(base, origin, id, name);
	free(base);
	if (text == NULL)
		snprintf(err, errsz, "out of memory");
	return text;
}
