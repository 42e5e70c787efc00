-- wrk script of bench/soak: every request kind of the soak in turn, over
-- HTTP/1.1 keepalive connections, each response's status checked against
-- the status its kind expects.  wrk must run one connection per thread
-- (-tN -cN): a thread then has one request in flight at a time, and the
-- response it sees is the answer to the last request it made (after a
-- reconnection wrk asks for a new request, and the lost one is not
-- answered).
--
-- Environment (set by bench/soak):
--   SOAK_KINDS  file of kinds, one a line, tab-separated: name, method,
--               target, expected status, body file (empty: no body),
--               then each header as "Name: value"

local kinds = {}

local function load_kinds()
    for line in io.lines(os.getenv("SOAK_KINDS")) do
        local f = {}
        for field in (line .. "\t"):gmatch("([^\t]*)\t") do
            table.insert(f, field)
        end

        local headers = {}
        for i = 6, #f do
            local name, value = f[i]:match("^([^:]+):%s*(.*)$")
            headers[name] = value
        end

        local body = nil
        if f[5] ~= "" then
            local fh = assert(io.open(f[5], "rb"))
            body = fh:read("*a")
            fh:close()
        end

        table.insert(kinds, { name = f[1], expect = tonumber(f[4]),
                              req = wrk.format(f[2], f[3], headers, body) })
    end
end

local threads = {}

function setup(thread)
    thread:set("first", #threads)
    table.insert(threads, thread)
end

local next_kind
local current
answered = {}
unexpected = {}

function init(args)
    load_kinds()
    next_kind = first % #kinds
end

function request()
    current = kinds[next_kind + 1]
    next_kind = (next_kind + 1) % #kinds
    return current.req
end

function response(status, headers, body)
    answered[current.name] = (answered[current.name] or 0) + 1
    if status ~= current.expect then
        local k = current.name .. ":" .. status
        unexpected[k] = (unexpected[k] or 0) + 1
    end
end

function done(summary, latency, requests)
    local sum = {}
    local bad = {}

    for _, t in ipairs(threads) do
        for k, n in pairs(t:get("answered")) do
            sum[k] = (sum[k] or 0) + n
        end
        for k, n in pairs(t:get("unexpected")) do
            bad[k] = (bad[k] or 0) + n
        end
    end

    for k, n in pairs(sum) do
        io.write(string.format("ANSWERED %s %d\n", k, n))
    end
    for k, n in pairs(bad) do
        io.write(string.format("UNEXPECTED %s %d\n", k, n))
    end

    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d connect=%d read=%d write=%d " ..
        "timeout=%d\n", summary.requests, summary.duration, e.connect,
        e.read, e.write, e.timeout))
end
