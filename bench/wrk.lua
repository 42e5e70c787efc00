-- wrk script of bench/run: one prebuilt request sent over and over, every
-- response status counted, and one machine-readable RESULT line at the end.
--
-- Environment (set by bench/run):
--   BENCH_METHOD     GET or POST
--   BENCH_PATH       the request target
--   BENCH_BODY_FILE  file holding the body (POST), sent as application/json
--   BENCH_HEADER     one extra "Name: value" header, or empty
--   BENCH_DELAY_MS   milliseconds each connection pauses between two
--                    requests, or empty for none

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body_file = os.getenv("BENCH_BODY_FILE") or ""
local extra = os.getenv("BENCH_HEADER") or ""
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local req
statuses = {}

function init(args)
    local headers = {}
    local body = nil

    if body_file ~= "" then
        local f = assert(io.open(body_file, "rb"))
        body = f:read("*a")
        f:close()
        headers["Content-Type"] = "application/json"
    end

    local name, value = extra:match("^([^:]+):%s*(.*)$")
    if name then
        headers[name] = value
    end

    req = wrk.format(method, path, headers, body)
end

function request()
    return req
end

-- wrk pauses between requests only when the script has a delay()
if pause then
    function delay()
        return pause
    end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local counts = {}

    for _, t in ipairs(threads) do
        for status, n in pairs(t:get("statuses")) do
            counts[status] = (counts[status] or 0) + n
        end
    end

    local list = {}
    for status, n in pairs(counts) do
        table.insert(list, status .. ":" .. n)
    end
    table.sort(list)

    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
        "connect=%d read=%d write=%d timeout=%d statuses=%s\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.timeout, table.concat(list, ",")))
end
