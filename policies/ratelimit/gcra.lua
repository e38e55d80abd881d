-- GCRA in one step, on Redis's clock (see gcra.go).
-- KEYS[1]: the budget. ARGV[1]: emission interval (µs), ARGV[2]: period (µs).
-- Returns {allowed, remaining, retry_after_us, reset_us}.
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
local allow_at = next - period
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000) + 1)
return {1, math.floor((period - (next - now)) / interval), 0, next - now}
