-- Takes small jobs for one micro-batch, up to a row cap, and leases them to the caller.
-- KEYS: ready, leased, kick, held (the caller's list of what it holds).
-- ARGV: row cap, lease expiry (epoch seconds), lease length (seconds; the held list outlives it).
-- Entries read "<id>:<rows>", or "<id>:<rows>:alone" for a job that may have killed its worker or
-- overrun a time limit: that one runs in a batch of its own and cannot take others down again.
-- The kick is cleared first: a job put in line after this call sends a drain message of its own.
-- Returns the taken entries, oldest first.
redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[4])
local taken, rows = {}, 0
while true do
  local entry = redis.call('LINDEX', KEYS[1], 0)
  if not entry then break end
  local size = tonumber(string.match(entry, '^[^:]+:(%d+)'))
  local alone = string.find(entry, ':alone$') ~= nil
  if #taken > 0 and (alone or rows + size > tonumber(ARGV[1])) then break end
  redis.call('LPOP', KEYS[1])
  redis.call('ZADD', KEYS[2], ARGV[2], entry)
  redis.call('RPUSH', KEYS[4], entry)
  taken[#taken + 1] = entry
  rows = rows + size
  if alone then break end
end
if #taken > 0 then redis.call('EXPIRE', KEYS[4], ARGV[3] + 60) end
return taken
