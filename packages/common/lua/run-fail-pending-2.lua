-- Fails a run whose submit was never acknowledged (still `pendingSince`):
-- the gateway answered IVIS-core with an error, or died before answering, so
-- IVIS-core has marked the run failed and it must never start. The gateway
-- calls it right after such an error; reconciliation calls it for a run
-- pending for longer than its grace (on Redis's clock, so a retry that
-- restarted the window is left alone).
-- KEYS[1] run record hash  KEYS[2] run index zset
-- ARGV[1] execution  ARGV[2] minimum pending age (ms, Redis clock; 0 = any)
-- ARGV[3] new state (from the state machine: queued + fail)  ARGV[4] now (ms)
-- ARGV[5..] field/value pairs to set as well
-- Returns 1 when the run was failed, 0 when it is not (any more) a pending queued run.
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution', 'pendingSince')
local state, execution, pending = cur[1], cur[2], cur[3]
if state ~= 'queued' or execution ~= ARGV[1] or not pending or pending == '' then return 0 end
if tonumber(ARGV[2]) > 0 then
  local t = redis.call('TIME')
  local redisNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if redisNow - tonumber(pending) < tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updatedAt', ARGV[4])
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HDEL', KEYS[1], 'pendingSince')
redis.call('ZADD', KEYS[2], ARGV[4], redis.call('HGET', KEYS[1], 'runId'))
return 1
