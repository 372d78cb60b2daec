-- Test-only tracer: counts LuaJIT trace events per start location (chunk:line) and, at the end,
-- which root trace starts LuaJIT blacklisted. jit.v/jit.dump print one line per event, so
-- counting a chain of side traces means parsing their output; this keeps the counts in the
-- worker and writes one JSON line per worker when it exits.
--
-- Plain Lua rather than TypeScript: it is a test harness, loaded only through the build's
-- `workerLua` hooks (init_worker: start(file), exit_worker: finish()), never by a bundle.
--
-- Blacklisting: after too many aborts LuaJIT patches the start bytecode of a root trace to
-- its I-variant (ILOOP, IFORL, IITERL, IFUNCF, IFUNCV), so it never counts as hot again.
-- A compiled start is J-something (JLOOP, JFORL, JFUNCF); an untouched one keeps its name.
-- Not "any name beginning with I": ITERL, the plain iterator loop, is a start that is neither.

local jit = require("jit")
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")

local funcinfo, funcbc = jutil.funcinfo, jutil.funcbc
local bcnames = vmdef.bcnames
local traceinfo, tracemc = jutil.traceinfo, jutil.tracemc

local M = {}

local BLACKLISTED = { ILOOP = true, IFORL = true, IITERL = true, IFUNCF = true, IFUNCV = true }

local out_file
local attached = false
-- "source:line" -> { key, starts, roots, sides, stops, aborts, reasons = { [reason] = n }, pcs = { { func, pc } } }
local locs = {}
-- trace number -> its start location's record, while it is being recorded
local recording = {}
-- trace number -> start location key, once it is compiled (for the size figures)
local compiled = {}
-- trace number -> its root trace, and root -> side traces started under it (maxside counts these)
local root_of, sides_of = {}, {}
local totals = { starts = 0, roots = 0, sides = 0, stops = 0, aborts = 0, flushes = 0 }

local function location(func, pc)
  local fi = funcinfo(func, pc)
  local src = fi.source
  if src == nil then
    -- A C function (fast function or builtin): funcinfo gives no source.
    return "[C]:" .. tostring(fi.ffid or fi.addr)
  end
  return src .. ":" .. tostring(fi.currentline or 0)
end

local function record_for(func, pc)
  local key = location(func, pc)
  local r = locs[key]
  if r == nil then
    r = { key = key, starts = 0, roots = 0, sides = 0, stops = 0, aborts = 0, reasons = {}, pcs = {} }
    locs[key] = r
  end
  return r
end

local function opname(func, pc)
  local ins = funcbc(func, pc)
  if ins == nil then return nil end
  local op = ins % 256
  return (string.gsub(string.sub(bcnames, op * 6 + 1, op * 6 + 6), " +$", ""))
end

-- Argument layout per event (lj_trace.c): start(tr, func, pc[, parent, exit]), stop(tr, func),
-- abort(tr, func, pc, code, reason), flush().
local function on_trace(what, tr, func, pc, otr, oex)
  if what == "start" then
    local r = record_for(func, pc)
    r.starts = r.starts + 1
    totals.starts = totals.starts + 1
    if otr ~= nil then
      r.sides = r.sides + 1
      totals.sides = totals.sides + 1
      local root = root_of[otr] or otr
      root_of[tr] = root
      sides_of[root] = (sides_of[root] or 0) + 1
    else
      root_of[tr] = nil
      r.roots = r.roots + 1
      totals.roots = totals.roots + 1
      -- Distinct start pcs of root traces: where blacklisting can happen.
      local seen = false
      for i = 1, #r.pcs do
        local p = r.pcs[i]
        if p[1] == func and p[2] == pc then seen = true break end
      end
      if not seen then r.pcs[#r.pcs + 1] = { func, pc } end
    end
    recording[tr] = r
    compiled[tr] = nil
  elseif what == "stop" then
    local r = recording[tr]
    if r ~= nil then
      r.stops = r.stops + 1
      recording[tr] = nil
      compiled[tr] = r.key
    end
    totals.stops = totals.stops + 1
  elseif what == "abort" then
    local r = recording[tr]
    -- Here otr is the error code and oex its argument, as jit.v's fmterr reads them.
    local reason = otr
    if type(otr) == "number" then
      local info = oex
      if type(info) == "function" then info = location(info, 0) end
      local fmt = vmdef.traceerr[otr] or ("error " .. tostring(otr) .. " %s")
      local ok, msg = pcall(string.format, fmt, info)
      reason = ok and msg or (fmt .. " " .. tostring(info))
    end
    reason = tostring(reason)
    if r ~= nil then
      r.aborts = r.aborts + 1
      r.reasons[reason] = (r.reasons[reason] or 0) + 1
      recording[tr] = nil
    end
    totals.aborts = totals.aborts + 1
  elseif what == "flush" then
    totals.flushes = totals.flushes + 1
    recording = {}
    compiled = {}
    root_of, sides_of = {}, {}
  end
end

function M.start(file)
  out_file = file
  if not attached then
    jit.attach(on_trace, "trace")
    attached = true
  end
end

-- The summary as a plain table (also for a standalone LuaJIT check).
function M.summary()
  local lines = {}
  for key, r in pairs(locs) do
    local ops, blacklisted = {}, false
    for i = 1, #r.pcs do
      local name = opname(r.pcs[i][1], r.pcs[i][2])
      if name ~= nil then
        ops[#ops + 1] = name
        if BLACKLISTED[name] then blacklisted = true end
      end
    end
    lines[#lines + 1] = {
      loc = key,
      starts = r.starts,
      roots = r.roots,
      sides = r.sides,
      stops = r.stops,
      aborts = r.aborts,
      reasons = r.reasons,
      ops = ops,
      blacklisted = blacklisted,
    }
  end
  -- How close the live traces come to the limits of jit.opt: maxrecord counts IR instructions,
  -- maxirconst IR constants, maxsnap snapshots (about one per exit), maxmcode the machine code
  -- of all traces, maxside the side traces started under one root (aborted attempts included).
  local live, mcode, big, exits, consts = 0, 0, { ins = 0 }, { exits = 0 }, { consts = 0 }
  -- Trace numbers are reused after aborts, so the live ones can be sparse.
  for i = 1, 65535 do
    local ti = traceinfo(i)
    if ti ~= nil then
      live = live + 1
      local mc = tracemc(i)
      if mc ~= nil then mcode = mcode + #mc end
      if ti.nins > big.ins then big = { ins = ti.nins, loc = compiled[i] } end
      if ti.nexit > exits.exits then exits = { exits = ti.nexit, loc = compiled[i] } end
      if ti.nk > consts.consts then consts = { consts = ti.nk, loc = compiled[i] } end
    end
  end
  local sides = { sides = 0 }
  for root, n in pairs(sides_of) do
    if n > sides.sides then sides = { sides = n, loc = compiled[root] } end
  end
  return {
    pid = ngx ~= nil and ngx.worker.pid() or 0,
    totals = totals,
    live = live,
    mcode_bytes = mcode,
    largest = big,
    most_exits = exits,
    most_consts = consts,
    most_sides = sides,
    locations = lines,
  }
end

function M.finish()
  if attached then
    jit.attach(on_trace)
    attached = false
  end
  if out_file == nil then return end
  local cjson = require("cjson.safe")
  local s = cjson.encode(M.summary())
  local f = io.open(out_file, "a")
  if f == nil then return end
  f:write(s, "\n")
  f:close()
end

return M
