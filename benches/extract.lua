-- wrk script for audited extracts: one bearer token, candidate ids rotating from a file.
-- CVVAULT_TOKEN=cvv_... CVVAULT_IDS=ids.txt wrk -t2 -c64 -d10s --latency -s benches/extract.lua http://127.0.0.1:PORT
local token = os.getenv("CVVAULT_TOKEN")
local ids = {}
for line in io.lines(os.getenv("CVVAULT_IDS")) do
  ids[#ids + 1] = line
end
local headers = { ["Authorization"] = "Bearer " .. token }
local n = 0

function setup(thread)
  n = n + 1
  thread:set("offset", n * 7919)
end

function init(args)
  n = offset or 0
end

request = function()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  return wrk.format("GET", "/v1/candidates/" .. id .. "/extract?purpose=coaching", headers)
end
