-- submission_networks: the daemon keeps the connect step (it needs the
-- client's address) and counts an agent's unauthenticated mail as outgoing
-- only from those networks.
-- conf: submission_networks = 192.0.2.0/24
dofile(os.getenv("MT_DIR") .. "/common.lua")

-- Connect as a client at ADDR; the connect step must not be skipped.
local function connect_from(addr)
	local conn = mt.connect(H.sock, 40, 0.25)
	if conn == nil then H.fail("cannot connect") end
	H.eq(mt.test_option(conn, SMFIP_NOCONNECT), false, "connect step kept")
	if mt.conninfo(conn, "client.example", addr) ~= nil then H.fail("conninfo") end
	H.eq(mt.getreply(conn), SMFIR_CONTINUE, "conninfo reply")
	return conn
end

local conn = connect_from("192.0.2.7")
local rc
for _ = 1, 20 do
	rc = os.execute("echo sealed-test-token | " .. H.ctl_bin .. " -c " .. H.conf ..
	    " token import agent1@msp.example acme > /dev/null 2>&1")
	if rc == true or rc == 0 then break end
	os.execute("sleep 0.1")
end
if rc ~= true and rc ~= 0 then H.fail("token import failed") end
local r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    headers = H.headers({ { "Message-ID", "<office1@msp.example>" } }), body = "From the office.\r\n" })
H.eq(r, SMFIR_CONTINUE, "from submission_networks: outbound")
H.eq(H.job_field(1, "outbound%-auth"), "network", "outbound via the network")
mt.disconnect(conn)

conn = connect_from("203.0.113.9")
r = H.send(conn, { from = "<agent1@msp.example>", rcpts = { "<customer@client.example>" },
    headers = H.headers({ { "Message-ID", "<outside1@evil.example>" } }), body = "From outside.\r\n" })
H.eq(r, SMFIR_ACCEPT, "from outside submission_networks: not outbound")
H.eq(H.job_count(), 1, "no job from outside")
mt.disconnect(conn)
