-- Starts attempt n of a webhook delivery, unless it is not the next one (a duplicate message, or one a
-- reclaim overtook) or the delivery is over. The attempt holds the delivery until `busy_until`.
-- KEYS: webhook.  ARGV: attempt, busy_until (epoch seconds), ttl.
-- Returns {1, url, body or false} to go on, else {0}.
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return {0} end
if tonumber(redis.call('HGET', KEYS[1], 'attempts')) + 1 ~= tonumber(ARGV[1]) then return {0} end
redis.call('HSET', KEYS[1], 'attempts', ARGV[1], 'busy_until', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_at', 'claimed_until')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, redis.call('HGET', KEYS[1], 'url'), redis.call('HGET', KEYS[1], 'body')}
