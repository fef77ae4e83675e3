-- common.lua: helpers shared by the miltertest scripts (loaded with dofile).
-- The harness (run.sh) exports MILTER_SOCK, MILTER_PID, MILTER_CONF, CTL.

H = {}

H.sock = os.getenv("MILTER_SOCK")
H.pid = os.getenv("MILTER_PID")
H.conf = os.getenv("MILTER_CONF")
H.ctl_bin = os.getenv("CTL")
H.state = os.getenv("MILTER_STATE")

-- Fail the script with a message.
-- (miltertest does not print a script's error message, so print it here)
function H.fail(msg)
	print("FAIL: " .. msg)
	print(debug.traceback("", 2))
	io.stdout:flush()
	error("FAIL: " .. msg, 2)
end

-- Assert equality with a readable message.
function H.eq(got, want, what)
	if got ~= want then
		H.fail(what .. ": got '" .. tostring(got) .. "', want '" ..
		    tostring(want) .. "'")
	end
end

-- Assert a Lua pattern matches.
function H.match(got, pattern, what)
	if got == nil or string.match(got, pattern) == nil then
		H.fail(what .. ": '" .. tostring(got) .. "' does not match '" ..
		    pattern .. "'")
	end
end

-- Open a milter connection to the daemon under test.
function H.connect()
	local conn = mt.connect(H.sock, 40, 0.25)
	if conn == nil then
		H.fail("cannot connect to " .. H.sock)
	end
	-- the daemon asks the MTA to skip the connect step (t_negotiate.lua)
	if not mt.test_option(conn, SMFIP_NOCONNECT) then
		if mt.conninfo(conn, "client.example", "127.0.0.1") ~= nil then
			H.fail("conninfo")
		end
		if mt.getreply(conn) ~= SMFIR_CONTINUE then
			H.fail("conninfo reply")
		end
	end
	return conn
end

-- Check a reply after a step.
local function step(conn, err, name)
	if err ~= nil then
		H.fail(name .. ": " .. tostring(err))
	end
	return mt.getreply(conn)
end

-- Send one message. m = {from=, rcpts={}, headers={{n,v},...},
-- body=string or nil, body_random=bytes or nil, qid=, abort=bool}.
-- Returns the end-of-message reply (or the reply that ended early).
function H.send(conn, m)
	-- m.auth: the SMTP AUTH login the MTA passes as {auth_authen}
	if m.auth ~= nil then
		mt.macro(conn, SMFIC_MAIL, "i", m.qid or "TESTQID",
		    "{auth_authen}", m.auth)
	else
		mt.macro(conn, SMFIC_MAIL, "i", m.qid or "TESTQID")
	end
	local r = step(conn, mt.mailfrom(conn, m.from or "<sender@client.example>"),
	    "mailfrom")
	if r ~= SMFIR_CONTINUE then H.fail("mailfrom reply " .. r) end
	for _, rcpt in ipairs(m.rcpts or { "<support@acme.example>" }) do
		r = step(conn, mt.rcptto(conn, rcpt), "rcptto")
		if r ~= SMFIR_CONTINUE then H.fail("rcptto reply " .. r) end
	end
	r = step(conn, mt.data(conn), "data")
	if r ~= SMFIR_CONTINUE then return r end
	for _, h in ipairs(m.headers or {}) do
		r = step(conn, mt.header(conn, h[1], h[2]), "header " .. h[1])
		if r ~= SMFIR_CONTINUE then return r end
	end
	r = step(conn, mt.eoh(conn), "eoh")
	if r ~= SMFIR_CONTINUE then return r end
	if m.body ~= nil then
		-- an MTA sends the body in chunks of at most 64 KB
		local pos = 1
		while pos <= #m.body do
			r = step(conn, mt.bodystring(conn, string.sub(m.body, pos,
			    pos + 65535 - 1)), "body")
			if r ~= SMFIR_CONTINUE then return r end
			pos = pos + 65535
		end
	end
	if m.body_random ~= nil then
		r = step(conn, mt.bodyrandom(conn, m.body_random), "bodyrandom")
		if r ~= SMFIR_CONTINUE then return r end
	end
	if m.abort then
		mt.abort(conn)
		return nil
	end
	return step(conn, mt.eom(conn), "eom")
end

-- Every value of an added header NAME, sorted (miltertest's order is not
-- the order of the milter's requests).
function H.added(conn, name)
	local vals = {}
	for i = 0, 20 do
		local v = mt.getheader(conn, name, i)
		if v == nil then break end
		table.insert(vals, v)
	end
	table.sort(vals)
	return vals
end

-- Run halo-milterctl with ARGS; returns its output.
function H.ctl(args)
	local p = io.popen(H.ctl_bin .. " -c " .. H.conf .. " " .. args .. " 2>&1")
	local out = p:read("*a")
	p:close()
	return out
end

-- Number of jobs (optionally in STATE).
function H.job_count(state)
	local args = "queue"
	if state then args = args .. " -s " .. state end
	local n = 0
	for line in string.gmatch(H.ctl(args), "[^\n]+") do
		if string.match(line, "^%d+ ") then n = n + 1 end
	end
	return n
end

-- One field of "halo-milterctl show ID".
function H.job_field(id, field)
	local out = H.ctl("show " .. id)
	return string.match(out, "\n" .. field .. "%s+([^\n]*)") or
	    string.match(out, "^" .. field .. "%s+([^\n]*)")
end

-- Files in a spool sub-directory ("tmp" or "msg").
function H.spool_files(sub)
	local p = io.popen("ls -1 " .. H.state .. "/spool/" .. sub .. " 2>/dev/null")
	local n = 0
	for _ in p:lines() do n = n + 1 end
	p:close()
	return n
end

-- The daemon's peak resident set (VmHWM) in kB.
function H.peak_rss_kb()
	local f = io.open("/proc/" .. H.pid .. "/status")
	if f == nil then H.fail("no /proc status for " .. H.pid) end
	local s = f:read("*a")
	f:close()
	return tonumber(string.match(s, "VmHWM:%s+(%d+)"))
end

-- Standard headers for a new message.
function H.headers(extra)
	local h = {
		{ "From", "Alice Example <alice@client.example>" },
		{ "To", "support@acme.example" },
		{ "Subject", "Printer on floor 2 is jammed" },
		{ "Date", "Tue, 24 Nov 2026 10:00:00 +0000" },
	}
	for _, x in ipairs(extra or {}) do table.insert(h, x) end
	return h
end

return H
