-- Claims the next attempt of a job's webhook delivery, once the job has ended and no attempt is under way.
-- A claim holds for `claim seconds`: until then, or until its message starts the attempt, nobody claims again.
-- KEYS: job, webhook.  ARGV: now (epoch seconds), ttl, claim seconds.
-- Returns {1, attempt} to send that attempt; {0, when} not now (when: epoch seconds to look again, or
-- '' while the job runs); {-1} nothing is left to send (delivered, given up, or no such job or webhook).
local state = redis.call('HGET', KEYS[2], 'state')
if state and state ~= 'pending' then return {-1} end
local now = tonumber(ARGV[1])
if not state then
  local status = redis.call('HGET', KEYS[1], 'status')
  local url = redis.call('HGET', KEYS[1], 'webhook_url')
  if not status or not url then return {-1} end
  if status ~= 'succeeded' and status ~= 'failed' then return {0, ''} end
  redis.call('HSET', KEYS[2], 'state', 'pending', 'attempts', 0, 'url', url)
end
local busy = redis.call('HGET', KEYS[2], 'busy_until')
if busy and tonumber(busy) > now then return {0, busy} end
local due = redis.call('HGET', KEYS[2], 'next_at')
if due and tonumber(due) > now then return {0, due} end
local claimed = redis.call('HGET', KEYS[2], 'claimed_until')
if claimed and tonumber(claimed) > now then return {0, claimed} end
redis.call('HSET', KEYS[2], 'claimed_until', tostring(now + tonumber(ARGV[3])))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {1, tonumber(redis.call('HGET', KEYS[2], 'attempts')) + 1}
