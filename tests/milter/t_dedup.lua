-- One job per (tenant, Message-ID), whatever the recipients or transactions.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
-- two recipients of one tenant, different modes: one job, the strongest
-- mode (intake) with its agent, listing both recipients
local r = H.send(conn, { rcpts = { "<sales@acme.example>", "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<dup@client.example>" } }), body = "x\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "status")
H.eq(mt.getheader(conn, "X-Halo-Status", 1), nil, "only one status for one tenant")
H.eq(H.job_count(), 1, "one job")
H.eq(H.job_field(1, "mode"), "intake", "strongest mode")
H.eq(H.job_field(1, "agent"), "dispatch@msp.example", "agent of the strongest rule")
H.eq(H.job_field(1, "recipients"), "sales@acme.example,support@acme.example", "recipients")

-- the same message again in another transaction: no second job
r = H.send(conn, { rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<dup@client.example>" } }), body = "x\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "skipped; reason=duplicate; tenant=acme; job=1", "duplicate")
H.eq(H.job_count(), 1, "still one job")
H.eq(H.spool_files("msg"), 1, "no second spool file")

-- two tenants: a job in each, sharing one spool file
r = H.send(conn, { rcpts = { "<support@acme.example>", "<help@globex.example>" },
    headers = H.headers({ { "Message-ID", "<both@client.example>" } }), body = "x\r\n" })
local st = H.added(conn, "X-Halo-Status")
H.eq(#st, 2, "a status per tenant")
H.eq(st[1], "queued; tenant=acme; job=2", "acme status")
H.eq(st[2], "queued; tenant=globex; job=3", "globex status")
H.eq(H.job_field(3, "agent"), "globex-agent@msp.example", "globex agent")
H.eq(H.job_field(2, "spool"), H.job_field(3, "spool"), "one spool file for both")
H.eq(H.spool_files("msg"), 2, "spool files")
-- agent=recipient: the recipient's own token
r = H.send(conn, { rcpts = { "<bob@acme.example>" },
    headers = H.headers({ { "Message-ID", "<to-bob@client.example>" } }), body = "x\r\n" })
H.eq(H.job_field(4, "agent"), "bob@acme.example", "recipient's own agent")
H.eq(H.job_field(4, "mode"), "thread-only", "thread-only mode")
mt.disconnect(conn)
