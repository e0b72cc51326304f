-- Writes a job's record and its payload chunks, all or nothing (a write refused for memory is refused
-- before anything is written).
-- KEYS: job, payload 0 .. payload n-1.  ARGV: ttl, the number of record fields, then field, value, ...,
-- then the n payloads.
local ttl = ARGV[1]
local fields = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * fields))
redis.call('EXPIRE', KEYS[1], ttl)
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 + 2 * fields + i - 1], 'EX', ttl)
end
return 1
