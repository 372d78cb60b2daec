-- Microbenchmark of the pure hot-path modules under plain LuaJIT.
-- usage: luajit micro.lua <compiled plugins dir> <dir with fhir_r4.lua> [iterations]
local dir, gen, n = arg[1], arg[2], tonumber(arg[3]) or 1000000
package.path = dir .. "/?.lua;" .. gen .. "/?.lua;" .. package.path

local classify = require("fhir.classify").classify
local uri = require("http.uri")
local query = require("http.query")
local tenant = require("routing.tenant")
local types = require("fhir_r4").resource_types

local clock = os.clock
local function bench(name, f)
  for i = 1, 10000 do f(i) end
  local t0 = clock()
  for i = 1, n do f(i) end
  io.write(string.format("%s\t%.2f\n", name, (clock() - t0) * 1e9 / n))
end

-- Eight inputs per operation, cycled, so nothing is constant-folded.
local paths = {
  "/Patient/123", "/Observation", "/Observation/abc-1/_history/2", "/metadata",
  "/Patient/123/$everything", "/Encounter/_search", "/Condition/9", "/Patient/p1/Observation",
}
local raw = {
  "/acme/fhir/Patient/123", "/acme/fhir/Observation", "/globex/fhir/Observation/abc-1/_history/2", "/acme/fhir/metadata",
  "/acme/fhir/Patient/123/$everything", "/globex/fhir/Encounter/_search", "/acme/fhir/Condition/9", "/acme/fhir/Patient/p1/Observation",
}
local queries = { "patient=123&_count=20", "category=laboratory", "", "_include=Observation:subject", "a=b", "code=x|y", "_sort=-date", "name=smith&birthdate=ge1970&_count=10" }
local policy = {
  resolution = { order = { "claim", "host", "path", "header" }, header = "X-Tenant", claim = "tenant" },
  tenants = {
    { id = "acme", hosts = {}, path_prefix = "/acme", fhir_base = "/fhir", fhir_versions = { "R4" } },
    { id = "globex", hosts = {}, path_prefix = "/globex", fhir_base = "/fhir", fhir_versions = {} },
    { id = "hosty", hosts = { "hosty.test" }, fhir_base = "/fhir", fhir_versions = {} },
  },
}
local idx = tenant.buildIndex(policy)
local band = bit.band

bench("fhir.classify", function(i) return classify("GET", paths[band(i, 7) + 1], types) end)
bench("http.uri.checkPath", function(i) return uri.checkPath(raw[band(i, 7) + 1]) end)
bench("http.query.canonicalQuery", function(i) return query.canonicalQuery(queries[band(i, 7) + 1], 100) end)
bench("routing.tenant.resolve + fhirPath", function(i)
  local p = raw[band(i, 7) + 1]
  local t, mode = tenant.resolve(idx, nil, "127.0.0.1", p, nil)
  return tenant.fhirPath(t, mode, p)
end)

-- The token-cache hit path of auth.identity, piece by piece as it runs per request: the
-- Bearer prefix check, SHA-256 of a real-sized token (about 800 bytes, like an RS256 JWT with
-- SMART claims), the worker LRU lookup, and the freshness check.
package.path = package.path .. ";/usr/share/lua/5.1/?.lua"
-- resty.lrucache reads ngx.now for TTLs; plain LuaJIT has no ngx.
ngx = ngx or { now = os.time, shared = {} }
local crypto = require("auth.crypto")
local cache = require("auth.cache")
local lrucache = require("resty.lrucache")
local sub = string.sub
local headers = {}
local lru = lrucache.new(4096)
for i = 1, 8 do
  local token = string.rep(string.char(96 + i), 780)
  headers[i] = "Bearer " .. token
  lru:set(crypto.sha256(token), { issuer = "bench", exp = 2e9, at = 1e9, via = "jwt", tid = "x", scope = "patient/*.rs" })
end
bench("auth.crypto.sha256 (780 B token)", function(i) return crypto.sha256(sub(headers[band(i, 7) + 1], 8)) end)
bench("auth cache hit (prefix, sha256, LRU, fresh)", function(i)
  local h = headers[band(i, 7) + 1]
  if sub(h, 1, 7) ~= "Bearer " then return nil end
  local id = lru:get(crypto.sha256From(h, 8))
  return id ~= nil and cache.fresh(id, 1e9 + 1, 60)
end)

-- SMART authorization per request, after the token cache hit: the scopes are parsed once per
-- token (kept on the cached identity), decisions without arguments are memoized. The
-- compartment row includes parsing the search arguments into lists, as the access phase does.
local authz = require("scopes.authorize")
local classifyFn = require("fhir.classify").classify
local userId = { issuer = "b", scope = "user/*.rs", exp = 2e9, at = 1e9, via = "jwt", tid = "x" }
local patientId = { issuer = "b", scope = "patient/*.rs launch/patient", patient = "p1", exp = 2e9, at = 1e9, via = "jwt", tid = "x" }
local searches, reads = {}, {}
for i, t in ipairs({ "Observation", "Condition", "Encounter", "Patient", "Procedure", "Immunization", "CarePlan", "Goal" }) do
  searches[i] = classifyFn("GET", "/" .. t, types)
  reads[i] = classifyFn("GET", "/" .. t .. "/x" .. i, types)
end
local rawArgs = { patient = "p1", category = "laboratory", _count = "20" }
local argsFn = function() return authz.toSearchArgs(rawArgs) end
-- The tenant's rules (operations, compartment settings): the defaults.
local rules = {}
bench("scopes.authorize user/*.rs search (memoized)", function(i) return authz.authorize(userId, searches[band(i, 7) + 1], argsFn, rules) end)
bench("scopes.authorize user/*.rs read (memoized)", function(i) return authz.authorize(userId, reads[band(i, 7) + 1], argsFn, rules) end)
bench("scopes.authorize patient/*.rs compartment search", function() return authz.authorize(patientId, searches[1], argsFn, rules) end)
