-- Option negotiation: the daemon asks for no connect or HELO step and no replies to
-- the steps that always continue (rcpt, headers, end of headers, body), and
-- mail still flows and is stamped with those replies skipped.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
for _, o in ipairs({ { SMFIP_NR_HDR, "NR_HDR" }, { SMFIP_NR_BODY, "NR_BODY" },
    { SMFIP_NR_EOH, "NR_EOH" }, { SMFIP_NR_RCPT, "NR_RCPT" },
    { SMFIP_NOHELO, "NOHELO" }, { SMFIP_NOCONNECT, "NOCONNECT" } }) do
	H.eq(mt.test_option(conn, o[1]), true, "negotiated " .. o[2])
end
H.eq(mt.test_option(conn, SMFIP_NR_MAIL), false, "MAIL still answered (it may accept early)")
H.eq(mt.test_option(conn, SMFIP_NOBODY), false, "the body is still sent")
local r = H.send(conn, { headers = H.headers({ { "Message-ID", "<nego@client.example>" } }),
    body = "Body with no replies per chunk.\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom reply")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "stamped")
H.eq(H.job_field(1, "message%-id"), "<nego@client.example>", "headers reached the milter")
H.eq(H.job_field(1, "size") ~= "0", true, "body reached the spool")
mt.disconnect(conn)
