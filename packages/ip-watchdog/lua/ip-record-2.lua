-- Records the host's public address if it changed, atomically, so that of
-- several watchdog replicas exactly one sees (and so notifies) each change.
-- KEYS[1] current address string  KEYS[2] history list (newest first, JSON)
-- ARGV[1] address  ARGV[2] now (ms)  ARGV[3] source (override|interface|http|command)
-- ARGV[4] history cap  ARGV[5] channel to publish the change on
-- Returns the previous address ('' when there was none) when it changed, nil when unchanged.
local previous = redis.call('GET', KEYS[1])
if previous == ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1])
local entry = cjson.encode({
  ip = ARGV[1], previous = previous or cjson.null, at = tonumber(ARGV[2]), source = ARGV[3]
})
redis.call('LPUSH', KEYS[2], entry)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PUBLISH', ARGV[5], entry)
return previous or ''
