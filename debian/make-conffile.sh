#!/bin/sh
# make-conffile.sh EXAMPLE - the package's /etc/halo-milter/halo-milter.conf:
# the annotated example with every line of the tenant sections commented
# out, under a header saying what to edit.
set -eu
cat <<'HDR'
# /etc/halo-milter/halo-milter.conf - halo-milter's configuration.
#
# As installed, no tenant is configured and the milter passes every message
# through untouched. To log mail into HaloPSA:
#   1. uncomment one [tenant NAME] section below and set halo_url,
#      client_id, client_secret_file (if the Halo application has a
#      secret), ticket_type_id and the routes of your mailboxes;
#   2. set public_url (agents' enrollment links);
#   3. check:  halo-milter -t
#   4. systemctl restart halo-milter, then hook it into Postfix
#      (smtpd_milters = inet:127.0.0.1:8894; see halo-milter(8)).
# Every key: halo-milter.conf(5). This file is readable by root and the
# halo-milter group only: keep secrets in files of the same mode.
#
HDR
awk '/^\[tenant / { t = 1 } { if (t && $0 != "" && $0 !~ /^#/) print "#" $0; else print }' "$1"
