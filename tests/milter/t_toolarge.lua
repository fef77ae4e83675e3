-- Mail over max_message_size flows on, recorded as skipped, not spooled.
-- conf: max_message_size = 64K
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
local r = H.send(conn, { headers = H.headers({ { "Message-ID", "<huge@client.example>" } }),
    body = string.rep("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 2048) })
H.eq(r, SMFIR_CONTINUE, "mail still accepted")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "skipped; reason=too-large; tenant=acme; job=1", "status")
H.eq(H.job_field(1, "spool"), "-", "no spool file recorded")
H.eq(H.spool_files("msg"), 0, "no spool file")
H.eq(H.spool_files("tmp"), 0, "no unfinished file")
mt.disconnect(conn)
