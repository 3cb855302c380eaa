-- Drops a run id from the run index only if its record is really gone: the
-- gateway may have submitted the run again since the scheduler read the index.
-- KEYS[1] run record hash  KEYS[2] run index zset
-- ARGV[1] runId
-- Returns 1 when the entry was removed, 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
