-- Sets fields of an existing machine; a machine deleted meanwhile is left deleted (no half hash).
-- KEYS[1] the machine's hash
-- ARGV field, value pairs
-- returns the number of new fields, or -1 when the machine does not exist
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSET', KEYS[1], unpack(ARGV))
