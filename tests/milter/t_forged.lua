-- Inbound X-Halo-* headers are removed before ours are stamped.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
local r = H.send(conn, { headers = H.headers({
    { "Message-ID", "<forged@client.example>" },
    { "X-Halo-Status", "queued; tenant=acme; job=999" },
    { "X-Halo-Conversation-Id", "ffffffffffffffffffffffffffffffff" },
    { "x-halo-token", "forged-token" },
    { "X-Halo-Status", "skipped; reason=forged" } }), body = "hi\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom reply")
H.eq(mt.eom_check(conn, MT_HDRDELETE, "X-Halo-Status"), true, "forged status deleted")
H.eq(mt.eom_check(conn, MT_HDRDELETE, "X-Halo-Conversation-Id"), true, "forged conversation deleted")
H.eq(mt.eom_check(conn, MT_HDRDELETE, "x-halo-token"), true, "forged token deleted")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "our status")
H.match(mt.getheader(conn, "X-Halo-Token", 0), "^%d+%.[%w_-]+; tenant=acme$", "our token")
if mt.getheader(conn, "X-Halo-Conversation-Id", 0) == "ffffffffffffffffffffffffffffffff" then
	H.fail("forged conversation id survived")
end
-- the spooled copy holds no X-Halo-* header either
local show = H.ctl("show 1")
if string.match(string.lower(show), "x%-halo%-") then
	H.fail("spooled headers contain X-Halo-*:\n" .. show)
end
mt.disconnect(conn)
