-- Mail without a Message-ID gets one, derived from its content, so a
-- resend of the same mail is recognised as a duplicate.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
local msg = { headers = H.headers({ { "Received", "from a by b; Tue, 24 Nov 2026 10:00:00 +0000" } }),
    body = "No id here.\r\n" }
local r = H.send(conn, msg)
H.eq(r, SMFIR_CONTINUE, "eom reply")
H.eq(mt.eom_check(conn, MT_HDRADD, "Message-ID"), true, "Message-ID added")
local id = mt.getheader(conn, "Message-ID", 0)
H.match(id, "^<%x+%.hm@[^>]+>$", "generated Message-ID")
H.eq(H.job_field(1, "message%-id"), id, "job carries the generated id")
-- the same content through another hop (different Received) is the same mail
msg.headers = H.headers({ { "Received", "from c by d; Tue, 24 Nov 2026 10:05:00 +0000" } })
r = H.send(conn, msg)
H.eq(mt.getheader(conn, "Message-ID", 0), id, "same content, same generated id")
H.match(mt.getheader(conn, "X-Halo-Status", 0), "^skipped; reason=duplicate; tenant=acme; job=1$", "resend is a duplicate")
H.eq(H.job_count(), 1, "one job")
-- different content: a different id
msg.body = "Other text.\r\n"
r = H.send(conn, msg)
if mt.getheader(conn, "Message-ID", 0) == id then H.fail("different content, same id") end
H.eq(H.job_count(), 2, "two jobs")
mt.disconnect(conn)
