-- Starts one delivery of a chunk, and reads what the worker needs to run it, in one round trip.
-- KEYS: job, attempts, done, payload, ended, events (all of one job).
-- ARGV: chunk, max deliveries, now (ISO), ttl, heartbeat, the most events kept.
-- Returns {0, job hash, payload} to go on; {1} when the job is gone, finished or the chunk done (skip);
-- {2} when this delivery exceeds the retry budget (the job is failed here);
-- {3} when the job has no such chunk (a crafted message: the job is left untouched).
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return {1} end
local chunk = tonumber(ARGV[1])
local chunks = tonumber(redis.call('HGET', job, 'chunks'))
if not chunk or not chunks or chunk ~= math.floor(chunk) or chunk < 0 or chunk >= chunks
   or tostring(chunk) ~= ARGV[1] then
  return {3}
end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return {1} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {1} end
local seen = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
if seen > tonumber(ARGV[2]) then
  redis.call('HSET', job, 'status', 'failed', 'finished_at', ARGV[3],
    'error', 'chunk ' .. ARGV[1] .. ' failed ' .. (seen - 1) .. ' times; giving up')
  redis.call('RPUSH', KEYS[5], '1')
  redis.call('EXPIRE', KEYS[5], ARGV[4])
  redis.call('XADD', KEYS[6], 'MAXLEN', ARGV[6], '*', 'type', 'failed')
  redis.call('EXPIRE', KEYS[6], ARGV[4])
  return {2}
end
redis.call('HSET', job, 'heartbeat', ARGV[5])
if status == 'queued' then
  redis.call('HSET', job, 'status', 'running', 'started_at', ARGV[3])
end
return {0, redis.call('HGETALL', job), redis.call('GET', KEYS[4])}
