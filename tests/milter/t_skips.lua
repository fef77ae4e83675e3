-- Every skip reason is stamped and recorded with its reason.
-- tenant: loop_max_creates = 2
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()
local n = 0

local function expect_skip(m, reason, what)
	n = n + 1
	m.headers = m.headers or H.headers()
	table.insert(m.headers, { "Message-ID", "<skip" .. n .. "@client.example>" })
	m.body = m.body or "x\r\n"
	local r = H.send(conn, m)
	H.eq(r, SMFIR_CONTINUE, what .. ": eom reply")
	H.eq(mt.getheader(conn, "X-Halo-Status", 0),
	    "skipped; reason=" .. reason .. "; tenant=acme; job=" .. n, what)
	H.eq(H.job_field(n, "state"), "skipped", what .. ": job state")
	H.eq(H.job_field(n, "reason"), reason, what .. ": job reason")
end

expect_skip({ from = "<>" }, "bounce", "null sender")
expect_skip({ headers = H.headers({ { "Content-Type",
    "multipart/report; report-type=delivery-status; boundary=\"b\"" } }) },
    "bounce", "delivery status report")
expect_skip({ headers = H.headers({ { "Auto-Submitted", "auto-replied" } }) },
    "auto-reply", "Auto-Submitted")
expect_skip({ headers = H.headers({ { "X-Autoreply", "yes" } }) }, "auto-reply", "X-Autoreply")
expect_skip({ headers = H.headers({ { "Content-Type",
    "multipart/report; report-type=disposition-notification; boundary=\"b\"" } }) },
    "read-receipt", "read receipt (MDN)")
expect_skip({ headers = H.headers({ { "Content-Type",
    "multipart/report; report-type=feedback-report; boundary=\"b\"" } }) },
    "feedback-report", "abuse feedback report (ARF)")
expect_skip({ headers = H.headers({ { "Precedence", "bulk" } }) }, "bulk", "Precedence bulk")
expect_skip({ headers = H.headers({ { "Precedence", "list" } }) }, "list", "Precedence list")
expect_skip({ headers = { { "From", "Halo <notify@acme.halopsa.example>" },
    { "Subject", "[ID:1234] updated" } } }, "halo-notification", "Halo's own mail")

-- Auto-Submitted: no is a person's mail
n = n + 1
local r = H.send(conn, { headers = H.headers({ { "Auto-Submitted", "no" },
    { "Message-ID", "<human@client.example>" } }), body = "x\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=" .. n, "Auto-Submitted: no")

-- loop: the sender's new threads over the cap (2: this one plus one more)
n = n + 1
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<loop1@client.example>" } }), body = "x\r\n" })
H.match(mt.getheader(conn, "X-Halo-Status", 0), "^queued", "second new thread still queued")
expect_skip({}, "loop", "third new thread from one sender")
-- a reply from the same sender is not a creation and still goes through
n = n + 1
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<loop-reply@client.example>" },
    { "In-Reply-To", "<human@client.example>" } }), body = "x\r\n" })
H.match(mt.getheader(conn, "X-Halo-Status", 0), "^queued", "reply over the cap still queued")
-- X-Auto-Response-Suppress alone (Outlook meeting responses) is a person's mail
n = n + 1
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<suppress@client.example>" },
    { "X-Auto-Response-Suppress", "All" },
    { "In-Reply-To", "<human@client.example>" } }), body = "x\r\n" })
H.match(mt.getheader(conn, "X-Halo-Status", 0), "^queued", "X-Auto-Response-Suppress alone")
mt.disconnect(conn)
