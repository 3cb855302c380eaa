-- Deletes a machine's records (its name becomes free again).
-- KEYS[1] machines zset, KEYS[2] the machine's hash, KEYS[3] machine names hash
-- ARGV[1] machine id
-- returns 1 when something was deleted, 0 when the machine was unknown
local name = redis.call('HGET', KEYS[2], 'name')
if name and redis.call('HGET', KEYS[3], name) == ARGV[1] then
  redis.call('HDEL', KEYS[3], name)
end
local removed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('DEL', KEYS[2])
if removed > 0 then return 1 end
return 0
