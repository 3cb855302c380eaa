-- Adds a machine to the registry unless its id or its name is taken.
-- KEYS[1] machines zset, KEYS[2] the machine's hash, KEYS[3] machine names hash
-- ARGV[1] machine id, ARGV[2] name, ARGV[3] createdAt (ms), ARGV[4..] field, value pairs of the hash
-- returns 'ok', 'id_taken' or 'name_taken'
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 1 then
  return 'id_taken'
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  return 'name_taken'
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 'ok'
