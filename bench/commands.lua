-- wrk script for bench/load.py: receive 1 unit of a random (warehouse, sku), then issue it again.
--   wrk -t1 -c32 -d20s -s bench/commands.lua URL -- WAREHOUSES SKUS [AUTHORIZATION]
-- Warehouses are LW-00.., SKUs LS-00000.. (bench/load.py seeds them). done() prints one JSON line.

local warehouses, skus = 1, 1
local headers = {["Content-Type"] = "application/json"}
local issue_next -- the issue that pairs with the receive just sent

function init(args)
  warehouses, skus = tonumber(args[1]), tonumber(args[2])
  if args[3] and args[3] ~= "" then headers["Authorization"] = args[3] end
  math.randomseed(os.time())
end

function request()
  local body = issue_next
  if body then
    issue_next = nil
  else
    local key = string.format('"warehouse": "LW-%02d", "sku": "LS-%05d", "quantity": 1}',
                              math.random(0, warehouses - 1), math.random(0, skus - 1))
    body = '{"type": "receive", ' .. key
    issue_next = '{"type": "issue", ' .. key
  end
  return wrk.format("POST", "/v1/commands", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"responses": %d, "seconds": %.3f, "error_statuses": %d, "socket_errors": %d, '
      .. '"p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
