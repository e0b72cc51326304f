-- Records how attempt n of a webhook delivery ended, unless a later attempt has started since.
-- KEYS: webhook.  ARGV: attempt, state, last status ('' for none), last error ('' for none),
-- delivered_at ('' unless delivered), next_at ('' unless pending), ttl.
-- Returns 1 when recorded, else 0.
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
if redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'busy_until', 'last_status', 'last_error')
redis.call('HSET', KEYS[1], 'state', ARGV[2])
local optional = {last_status = ARGV[3], last_error = ARGV[4], delivered_at = ARGV[5], next_at = ARGV[6]}
for name, value in pairs(optional) do
  if value ~= '' then redis.call('HSET', KEYS[1], name, value) end
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
return 1
