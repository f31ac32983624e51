-- wrk script for the smmkit benchmarks: one script, the scenario chosen by its arguments.
--
--   wrk -t2 -c32 -d20s --latency -s bench/smm.lua URL -- SCENARIO DATAFILE NONCE
--
-- SCENARIO: balance | status | moving | multi | add | services | mix | const (baseline: plain GET)
-- DATAFILE: one line per API key, "KEY<TAB>id,id,id" (orders that key owns, for status polling)
-- NONCE:    makes add links unique across runs (a link may not repeat while its order is active)
--
-- Every request is a POST application/x-www-form-urlencoded, the documented transport. Bodies
-- whose JSON is {"error": ...} are counted (an error answer is HTTP 200 in this API, so wrk's
-- own non-2xx count would not see them). done() prints one line "BENCHJSON {...}" for run.py.

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local scenario, nonce
local keys, ids = {}, {}
local counter = 0

local function load_data(path)
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      local key, list = line:match("^([^\t]+)\t?(.*)$")
      if key then
         local owned = {}
         for id in list:gmatch("%d+") do owned[#owned + 1] = id end
         keys[#keys + 1] = key
         ids[#ids + 1] = owned
      end
   end
   f:close()
end

function init(args)
   scenario = args[1] or "balance"
   if args[2] then load_data(args[2]) end
   nonce = args[3] or "0"
   errbody = 0      -- globals: done() reads them from every thread with thread:get()
   nonjson = 0
   math.randomseed(tid * 7919 + os.time())
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local function post(body)
   return wrk.format("POST", nil, nil, body)
end

local function pick()
   local i = math.random(#keys)
   return keys[i], ids[i]
end

local function one_id(owned)
   return owned[math.random(#owned)]
end

local function many_ids(owned, n)
   local out, m = {}, #owned
   local start = math.random(m)
   for j = 0, n - 1 do out[#out + 1] = owned[(start + j) % m + 1] end
   return table.concat(out, ",")
end

local builders = {}

builders.balance = function()
   local key = pick()
   return post("key=" .. key .. "&action=balance")
end

builders.services = function()
   local key = pick()
   return post("key=" .. key .. "&action=services")
end

builders.status = function()
   local key, owned = pick()
   return post("key=" .. key .. "&action=status&order=" .. one_id(owned))
end

-- the same request as status; run.py hands it the ids of orders still being delivered
builders.moving = builders.status

builders.multi = function()
   local key, owned = pick()
   return post("key=" .. key .. "&action=status&orders=" .. many_ids(owned, 100))
end

builders.add = function()
   local key = pick()
   counter = counter + 1
   -- service 3: Default, rate 0.12, min 20 -> 0.0024 per order
   return post("key=" .. key .. "&action=add&service=3&quantity=20&link=https%3A%2F%2Fbench.example%2Fp%2F"
               .. nonce .. "-" .. tid .. "-" .. counter)
end

-- The realistic mix: 80% polling (half single, half multi of 20 ids), 10% add, 5% balance,
-- 5% services.
builders.mix = function()
   local r = math.random(100)
   if r <= 40 then return builders.status() end
   if r <= 80 then
      local key, owned = pick()
      return post("key=" .. key .. "&action=status&orders=" .. many_ids(owned, 20))
   end
   if r <= 90 then return builders.add() end
   if r <= 95 then return builders.balance() end
   return builders.services()
end

builders.const = function()
   return post("key=k&action=balance")
end

function request()
   return builders[scenario]()
end

function response(status, headers, body)
   local first = body:sub(1, 1)
   if body:find('"error"', 1, true) then
      errbody = errbody + 1
   elseif not (first == "{" or first == "[") then
      nonjson = nonjson + 1
   end
end

function done(summary, latency, requests)
   local eb, nj = 0, 0
   for _, t in ipairs(threads) do
      eb = eb + (t:get("errbody") or 0)
      nj = nj + (t:get("nonjson") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, ' ..
      '"err_timeout": %d, "error_bodies": %d, "non_json": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, e.connect, e.read, e.write, e.status, e.timeout, eb, nj))
end
