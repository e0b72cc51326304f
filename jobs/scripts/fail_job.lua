-- Fails a job unless it already finished.
-- KEYS: job, ended, events.  ARGV: now (ISO), reason, error code, ttl, the most events kept.
-- Returns 1 when this call failed the job, else 0; then the job's stream ends with a `failed` event.
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return 0 end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return 0 end
-- A write that cannot grow memory comes first: Redis at maxmemory (noeviction) refuses only a script's
-- first write, so a job can always be failed, and its deadline kept, however full Redis is.
redis.call('HDEL', job, 'heartbeat')
redis.call('HSET', job, 'status', 'failed', 'finished_at', ARGV[1], 'error', ARGV[2], 'error_code', ARGV[3])
redis.call('RPUSH', KEYS[2], '1')
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], '*', 'type', 'failed')
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
