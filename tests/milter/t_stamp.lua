-- Routed mail is stamped, queued and threaded; unrouted mail is untouched.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local conn = H.connect()

-- 1. new mail with its own Message-ID: queued, not given a second one
local r = H.send(conn, { headers = H.headers({ { "Message-ID", "<first@client.example>" } }),
    body = "The printer is jammed.\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom reply")
H.eq(mt.eom_check(conn, MT_HDRADD, "Message-ID"), false, "Message-ID added to mail that has one")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "status")
-- the pane's key to the status API: "JOB.MAC", MAC = HMAC over the job,
-- its tenant, Message-ID and mailboxes (status.h), base64url
local token = mt.getheader(conn, "X-Halo-Token", 0)
H.match(token, "^%d+%.[%w_-]+; tenant=acme$", "token stamp")
H.eq(string.match(token, "^(%d+)%."), "1", "token names its job")
H.eq(#string.match(token, "^%d+%.([^;]+)"), 43, "token MAC length")
local conv1 = mt.getheader(conn, "X-Halo-Conversation-Id", 0)
H.match(conv1, "^%x+$", "conversation id")
H.eq(#conv1, 32, "conversation id length")
H.eq(H.job_count("queued"), 1, "queued jobs")
H.eq(H.job_field(1, "message%-id"), "<first@client.example>", "job message-id")
H.eq(H.job_field(1, "agent"), "dispatch@msp.example", "job agent")
H.eq(H.job_field(1, "starts%-thread"), "yes", "starts thread")
H.eq(H.spool_files("msg"), 1, "spool files")

-- 2. a reply (In-Reply-To) inherits the conversation
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<second@client.example>" },
    { "In-Reply-To", "<first@client.example>" },
    { "References", "<first@client.example>" } }), body = "Still jammed.\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom reply 2")
H.eq(mt.getheader(conn, "X-Halo-Conversation-Id", 0), conv1, "reply inherits conversation")
H.eq(H.job_field(2, "starts%-thread"), "no", "reply does not start a thread")

-- 3. an Outlook message: the key is the Thread-Index GUID (bytes 6..21)
-- 0x01 + 5 bytes time + GUID 00112233445566778899aabbccddeeff
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<outlook@client.example>" },
    { "Thread-Index", "AdrBtkQ/ABEiM0RVZneImaq7zN3u/w==" },
    { "Thread-Topic", "Printer" } }), body = "x\r\n" })
H.eq(r, SMFIR_CONTINUE, "eom reply 3")
H.eq(mt.getheader(conn, "X-Halo-Conversation-Id", 0),
    "00112233445566778899aabbccddeeff", "Thread-Index GUID")

-- 4. a non-Outlook reply to the Outlook message inherits the GUID key
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<reply-to-outlook@client.example>" },
    { "In-Reply-To", "<outlook@client.example>" } }), body = "x\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Conversation-Id", 0),
    "00112233445566778899aabbccddeeff", "inherited Thread-Index GUID")

-- 5. a reply whose parent we never saw derives the key from the root, so
-- two such replies in one thread agree
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<r1@elsewhere.example>" },
    { "References", "<root@elsewhere.example> <mid@elsewhere.example>" } }), body = "x\r\n" })
local derived = mt.getheader(conn, "X-Halo-Conversation-Id", 0)
r = H.send(conn, { headers = H.headers({ { "Message-ID", "<r2@elsewhere.example>" },
    { "References", "<root@elsewhere.example> <other@elsewhere.example>" } }), body = "x\r\n" })
H.eq(mt.getheader(conn, "X-Halo-Conversation-Id", 0), derived, "same root, same key")

-- 6. unrouted mail: accepted at DATA, nothing stamped, no job
local before = H.job_count()
r = H.send(conn, { rcpts = { "<someone@unrelated.example>" }, headers = H.headers() })
H.eq(r, SMFIR_ACCEPT, "unrouted mail accepted at DATA")
H.eq(H.job_count(), before, "no job for unrouted mail")

-- 7. a recipient routed "off" is like unrouted
r = H.send(conn, { rcpts = { "<noreply@acme.example>" }, headers = H.headers() })
H.eq(r, SMFIR_ACCEPT, "off-routed mail accepted at DATA")
H.eq(H.job_count(), before, "no job for off-routed mail")

mt.disconnect(conn)
