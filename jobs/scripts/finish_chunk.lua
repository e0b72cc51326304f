-- Records one chunk's results and drops its payload. Idempotent: a redelivered chunk overwrites its
-- result and is counted once.
-- KEYS: job, done, result, payload, ended, events.  ARGV: chunk, rows, results, ttl, now (ISO), heartbeat,
-- the most events kept.
-- Returns 0 counted, 1 duplicate, 2 counted and the job succeeded, -1 the job is gone or finished.
-- Each chunk counted adds a `progress` event to the job's stream, and the last one a `succeeded` event.
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return -1 end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return -1 end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
redis.call('DEL', KEYS[4])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 1 end
redis.call('EXPIRE', KEYS[2], ARGV[4])
local rows_done = redis.call('HINCRBY', job, 'rows_done', ARGV[2])
redis.call('HSET', job, 'heartbeat', ARGV[6])
redis.call('XADD', KEYS[6], 'MAXLEN', ARGV[7], '*', 'type', 'progress', 'rows_done', rows_done,
  'rows', redis.call('HGET', job, 'rows'))
redis.call('EXPIRE', KEYS[6], ARGV[4])
local done = redis.call('SCARD', KEYS[2])
if done >= tonumber(redis.call('HGET', job, 'chunks')) then
  redis.call('HSET', job, 'status', 'succeeded', 'finished_at', ARGV[5])
  redis.call('EXPIRE', job, ARGV[4])
  redis.call('RPUSH', KEYS[5], '1')
  redis.call('EXPIRE', KEYS[5], ARGV[4])
  redis.call('XADD', KEYS[6], 'MAXLEN', ARGV[7], '*', 'type', 'succeeded')
  return 2
end
return 0
