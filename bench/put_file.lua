-- bench/put_file.lua — wrk script: PUT the bytes of one file per request.
--
-- The body is BENCH_BODY (read once); the target is one of BENCH_ENTITIES
-- paths taken in turn: BENCH_PREFIX .. id .. BENCH_SUFFIX (ids from
-- BENCH_FIRST_ID), e.g. /api/v1/Person/7/Image or /dav/p7.jpg. The requests
-- are formatted once in init(), so wrk only copies them: the load tool stays
-- cheap next to the server. Headers (Authorization, Content-Type) come from
-- wrk -H.
dofile(os.getenv("BENCH_LUA_DIR") .. "/stats.lua")

local method = os.getenv("BENCH_METHOD") or "PUT"
local prefix = os.getenv("BENCH_PREFIX") or "/"
local suffix = os.getenv("BENCH_SUFFIX") or ""
local entities = tonumber(os.getenv("BENCH_ENTITIES") or "1")
local first = tonumber(os.getenv("BENCH_FIRST_ID") or "1")
local reqs = {}
local n = 0

function init(args)
    local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
    local body = f:read("*a")
    f:close()
    for i = 0, entities - 1 do
        reqs[i] = wrk.format(method, prefix .. (first + i) .. suffix, nil, body)
    end
end

function request()
    n = n + 1
    return reqs[n % entities]
end
