-- A 50 MB body is spooled to disk with bounded daemon memory.
dofile(os.getenv("MT_DIR") .. "/common.lua")
mt.set_timeout(120)
local conn = H.connect()
local before = H.peak_rss_kb()
local r = H.send(conn, { headers = H.headers({ { "Message-ID", "<big@client.example>" } }),
    body_random = 50 * 1024 * 1024 })
H.eq(r, SMFIR_CONTINUE, "eom reply")
H.eq(mt.getheader(conn, "X-Halo-Status", 0), "queued; tenant=acme; job=1", "status")
local size = tonumber(H.job_field(1, "size"))
if size == nil or size < 50 * 1024 * 1024 then H.fail("spooled size " .. tostring(size)) end
local grown = H.peak_rss_kb() - before
io.stderr:write("peak RSS grew by " .. grown .. " kB for a 50 MB body\n")
if grown > 16 * 1024 then H.fail("peak RSS grew by " .. grown .. " kB") end
mt.disconnect(conn)
