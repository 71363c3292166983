-- bench/put_json.lua — wrk script: a small JSON update per request.
--
-- Each request changes the Description of one of BENCH_ENTITIES records,
-- taken in turn (ids BENCH_FIRST_ID ..), so every request is a real write
-- (the text differs each time) and concurrent writes spread over records:
--   BENCH_METHOD  PUT (crmblob's ImageInfo) or PATCH (json-server)
--   BENCH_PREFIX  path before the id, e.g. /api/v1/Person/
--   BENCH_SUFFIX  path after the id, e.g. /ImageInfo
--   BENCH_FIELD   the member to change (default Description)
-- Headers (Authorization, Content-Type) come from wrk -H.
dofile(os.getenv("BENCH_LUA_DIR") .. "/stats.lua")

local method = os.getenv("BENCH_METHOD") or "PUT"
local prefix = os.getenv("BENCH_PREFIX") or "/"
local suffix = os.getenv("BENCH_SUFFIX") or ""
local field = os.getenv("BENCH_FIELD") or "Description"
local entities = tonumber(os.getenv("BENCH_ENTITIES") or "1")
local first = tonumber(os.getenv("BENCH_FIRST_ID") or "1")
local n = 0
local tag = 0

function init(args)
    -- distinct texts from run to run (warm-up, measured run): no write is a no-op
    math.randomseed(os.time())
    tag = os.time() * 1000 + math.random(0, 999)
end

function request()
    n = n + 1
    local id = first + (n % entities)
    local body = string.format('{"%s":"bench %d-%d"}', field, tag, n)
    return wrk.format(method, prefix .. id .. suffix, nil, body)
end
