-- Issue 11, intake: who may write. Agents' outgoing mail only from a
-- session authenticated as the agent; status tokens bound to their job;
-- a mail that pre-empts a Message-ID is its own job; From: authenticity
-- from trusted Authentication-Results only.
-- conf: authserv_ids = mx.msp.example
-- tenant: agent_login = jdoe agent1@msp.example
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
-- enroll agent1 (the daemon may still be writing its key files: retry)
local rc
for _ = 1, 20 do
	rc = os.execute("echo sealed-test-token | " .. H.ctl_bin .. " -c " .. H.conf ..
	    " token import agent1@msp.example acme > /dev/null 2>&1")
	if rc == true or rc == 0 then break end
	os.execute("sleep 0.1")
end
if rc ~= true and rc ~= 0 then H.fail("token import failed") end
local function reply_headers(id)
	return H.headers({ { "Subject", "Re: [ID:1] printer" }, { "Message-ID", id } })
end

-- 1. attack: plain SMTP (no AUTH), envelope an agent's address, [ID:n]
-- subject, to a customer: not the agent's mail, no job
local r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    headers = reply_headers("<spoof1@evil.example>"), body = "Posted as the agent?\r\n" })
H.eq(r, SMFIR_ACCEPT, "unauthenticated agent envelope: not outbound")
H.eq(H.job_count(), 0, "no job for the spoofed agent envelope")

-- 2. authenticated, but as another login: no
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    auth = "mallory@msp.example", headers = reply_headers("<spoof2@evil.example>"),
    body = "Another login.\r\n" })
H.eq(r, SMFIR_ACCEPT, "another login: not outbound")
H.eq(H.job_count(), 0, "no job for another login")

-- 3. authenticated as the agent: outbound
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    auth = "agent1@msp.example", headers = reply_headers("<real1@msp.example>"),
    body = "Fixed.\r\n" })
H.eq(r, SMFIR_CONTINUE, "the agent's own session: outbound")
H.eq(H.job_count(), 1, "one outbound job")
H.eq(H.job_field(1, "mode"), "outbound", "outbound mode")
H.eq(H.job_field(1, "outbound%-auth"), "sasl", "outbound via SMTP AUTH")

-- 4. a login mapped to the agent (agent_login)
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    auth = "jdoe", headers = reply_headers("<real2@msp.example>"), body = "Mapped.\r\n" })
H.eq(r, SMFIR_CONTINUE, "agent_login: outbound")
H.eq(H.job_field(2, "mode"), "outbound", "mapped login: outbound")

-- 5. attack: the agent's envelope on mail to a routed address is a
-- stranger's inbound mail, never "Email Sent"
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<support@acme.example>" },
    headers = reply_headers("<spoof3@evil.example>"), body = "Inbound.\r\n" })
H.eq(r, SMFIR_CONTINUE, "routed spoof inspected")
H.eq(H.job_field(3, "mode"), "intake", "routed spoof: inbound")
H.eq(H.job_field(3, "outbound%-auth"), "-", "routed spoof: no outbound auth")

-- 6. attack: a mail re-using another message's Message-ID towards another
-- mailbox gets its own job and its own token, never the original's
r = H.send(conn, { rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<shared@client.example>" } }),
    body = "The genuine mail.\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=4", "genuine queued")
local genuine_token = mt.getheader(conn, "X-Halo-Token", 0)
H.match(genuine_token, "^4%.", "genuine token names job 4")
r = H.send(conn, { from = "<mallory@evil.example>", rcpts = { "<bob@acme.example>" },
    headers = { { "From", "Mallory <mallory@evil.example>" }, { "To", "bob@acme.example" },
    { "Subject", "Same id" }, { "Message-ID", "<shared@client.example>" } },
    body = "Show me job 4.\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=5",
    "re-used Message-ID: its own job")
local reuse_token = mt.getheader(conn, "X-Halo-Token", 0)
H.match(reuse_token, "^5%.", "re-used Message-ID: a token of its own job")
if reuse_token == genuine_token then H.fail("the original job's token was stamped") end

-- 7. the same mail again (a resend): a duplicate, stamped with no token
r = H.send(conn, { rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<shared@client.example>" } }),
    body = "The genuine mail.\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "skipped; reason=duplicate; tenant=acme; job=4",
    "resend: duplicate")
H.eq(mt.getheader(conn, "X-Halo-Token", 0), nil, "a duplicate carries no token")

-- 8. attack: a mail that pre-empts a Message-ID does not make the genuine
-- one a duplicate
r = H.send(conn, { from = "<mallory@evil.example>", rcpts = { "<support@acme.example>" },
    headers = { { "From", "Alice Example <alice@client.example>" },
    { "Subject", "Printer" }, { "Message-ID", "<next@client.example>" } },
    body = "I was first.\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=6", "pre-empting mail")
r = H.send(conn, { rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<next@client.example>" } }),
    body = "The genuine next mail.\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=7",
    "the genuine mail is still logged")
H.eq(H.job_field(7, "from"), "alice@client.example", "genuine sender")

-- 9. From: authenticity, stored for the worker
H.eq(H.job_field(7, "sender%-auth"), "aligned", "envelope aligned with From:")
H.eq(H.job_field(6, "sender%-auth"), "none", "spoofed From: (envelope evil.example)")
r = H.send(conn, { from = "<bounce@esp.example>", rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<ar1@client.example>" },
    { "Authentication-Results", "mx.msp.example; dkim=pass header.d=client.example;\r\n\tdmarc=pass (p=reject) header.from=client.example" } }),
    body = "Via an ESP.\r\n" })
H.eq(H.job_field(8, "sender%-auth"), "dmarc", "trusted dmarc=pass")
r = H.send(conn, { from = "<m@evil.example>", rcpts = { "<support@acme.example>" },
    headers = H.headers({ { "Message-ID", "<ar2@client.example>" },
    { "Authentication-Results", "mx.evil.example; dmarc=pass header.from=client.example" } }),
    body = "Forged verdict.\r\n" })
H.eq(H.job_field(9, "sender%-auth"), "none", "another authserv-id counts for nothing")
mt.disconnect(conn)
