-- Puts taken small jobs back in line, first, each to run alone. Used for jobs whose lease lapsed
-- (their worker died) and for a batch that overran its time limit.
-- KEYS: ready, leased.  ARGV: the entries to put back, or '--lapsed-before', <epoch seconds>.
-- Only entries still leased are put back, so a job recorded meanwhile is not run again.
-- Returns how many were put back.
local entries = ARGV
if ARGV[1] == '--lapsed-before' then
  entries = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[2], 'BYSCORE')
end
local count = 0
for i = #entries, 1, -1 do
  local entry = entries[i]
  if redis.call('ZREM', KEYS[2], entry) == 1 then
    if not string.find(entry, ':alone$') then entry = entry .. ':alone' end
    redis.call('LPUSH', KEYS[1], entry)
    count = count + 1
  end
end
return count
