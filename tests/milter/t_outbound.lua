-- An enrolled agent's mail to outside addresses, from a session that
-- authenticated as the agent ({auth_authen}), makes an outbound job (no
-- X-Halo-* stamps on mail leaving for customers); anyone else's unrouted
-- mail is accepted at DATA and costs nothing. t_trust.lua has the sessions
-- that may not send as an agent.
dofile(os.getenv("MT_DIR") .. "/common.lua")
-- enroll agent1 (any token text: intake only checks that one is stored)
local rc = os.execute("echo sealed-test-token | " .. H.ctl_bin .. " -c " .. H.conf ..
    " token import agent1@msp.example acme > /dev/null")
if rc ~= true and rc ~= 0 then H.fail("token import failed") end
local conn = H.connect()

local r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    auth = "agent1@msp.example", headers = H.headers({ { "Message-ID", "<out1@msp.example>" },
    { "In-Reply-To", "<earlier@client.example>" } }), body = "Here is the fix.\r\n" })
H.eq(r, SMFIR_CONTINUE, "outbound mail inspected")
H.eq(mt.eom_check(conn, MT_HDRADD, "X-Halo-Status"), false, "no status on outgoing mail")
H.eq(mt.eom_check(conn, MT_HDRADD, "X-Halo-Conversation-Id"), false, "no conversation id on outgoing mail")
H.eq(H.job_count(), 1, "one outbound job")
H.eq(H.job_field(1, "mode"), "outbound", "job mode")
H.eq(H.job_field(1, "agent"), "agent1@msp.example", "the sending agent's token")
H.eq(H.job_field(1, "outbound%-auth"), "sasl", "how the session proved it")

-- outbound mail without a Message-ID still gets one (threading needs it)
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    auth = "agent1@msp.example", headers = H.headers(), body = "No id.\r\n" })
H.eq(mt.eom_check(conn, MT_HDRADD, "Message-ID"), true, "Message-ID added")
H.eq(H.job_count(), 2, "second outbound job")

-- a non-agent's mail to outside: untouched, no job
r = H.send(conn, { from = "<someone@msp.example>", rcpts = { "<customer@client.example>" },
    headers = H.headers({ { "Message-ID", "<out2@msp.example>" } }) })
H.eq(r, SMFIR_ACCEPT, "non-agent mail accepted at DATA")
H.eq(H.job_count(), 2, "no job for a non-agent")
mt.disconnect(conn)
