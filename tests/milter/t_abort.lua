-- An aborted transaction leaves no job and no file; the connection goes on.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
local r = H.send(conn, { headers = H.headers({ { "Message-ID", "<aborted@client.example>" } }),
    body = string.rep("partial body line\r\n", 1000), abort = true })
H.eq(H.job_count(), 0, "no job after abort")
H.eq(H.spool_files("tmp"), 0, "no unfinished spool file")
H.eq(H.spool_files("msg"), 0, "no committed spool file")
-- the same message sent in full afterwards is logged normally
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<aborted@client.example>" } }),
    body = "complete\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "resent in full")
H.eq(H.spool_files("msg"), 1, "one spool file")
mt.disconnect(conn)
