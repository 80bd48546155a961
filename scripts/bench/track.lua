-- wrk script: single Segment track events, each with its own messageId, to /v1/track.
-- Usage: WRITE_KEY=… wrk -t2 -c256 -d20s -s scripts/bench/track.lua http://127.0.0.1:8080
local key = os.getenv("WRITE_KEY")
local auth = "Basic " .. (function(s)
  local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, c = "", x:byte()
    for i = 8, 1, -1 do r = r .. (c % 2 ^ i - c % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end)(key .. ":")
local thread_id, n = 0, 0
function setup(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
function init() math.randomseed(os.time() + (tid or 0)) end
function request()
  n = n + 1
  local body = string.format('{"userId":"user-%d","event":"Product Viewed","messageId":"wrk-%d-%d-%d","properties":{"product_id":"SKU-1001","price":399,"currency":"CNY","category":"outdoor"},"context":{"locale":"zh-CN"}}',
    math.random(200000), os.time(), tid or 0, n)
  return wrk.format("POST", "/v1/track", { ["Authorization"] = auth, ["Content-Type"] = "application/json" }, body)
end
