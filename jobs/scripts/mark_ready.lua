-- Puts a small job in line for a micro-batch.
-- KEYS: ready, kick.  ARGV: "<id>:<rows>", kick ttl (ms).
-- Returns 1 when the caller must send a drain message (none is on its way), else 0.
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 1 end
return 0
