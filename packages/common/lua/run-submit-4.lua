#!lua
-- Records a run submitted by IVIS-core, atomically and idempotently. The
-- shebang makes Redis (7+) refuse the whole script up front when it is out
-- of memory, instead of failing at the first write after the DEL.
-- KEYS[1] run record hash   KEYS[2] run request string
-- KEYS[3] run output string KEYS[4] run index zset
-- ARGV[1] runId  ARGV[2] raw request body  ARGV[3] taskId  ARGV[4] jobId
-- ARGV[5] now (ms)  ARGV[6] comma-separated final states
-- ARGV[7] '1' when a new execution must wait for an acknowledgement (the gateway), else '0'
-- Returns {outcome, execution, state, pending}: outcome 'existing' when the
-- run is live (nothing changed), 'created' for a new run, 'resubmitted' when
-- a final run starts a new execution (IVIS-core reuses run ids only that way).
-- A new execution of the gateway is *pending*: `pendingSince` holds Redis's clock (ms) until
-- the gateway acknowledges it (run-acknowledge-1.lua) right before its 200;
-- agents do not start a pending run and reconciliation fails one that stays
-- pending. A retry of a pending run restarts its acknowledgement window.
local t = redis.call('TIME')
local redisNow = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
-- One read for all three fields (HMGET gives false for a missing one).
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution', 'pendingSince')
local state = cur[1]
if state then
  local final = false
  for s in string.gmatch(ARGV[6], '[^,]+') do
    if s == state then final = true end
  end
  if not final then
    local pending = cur[3]
    if pending and pending ~= '' then
      redis.call('HSET', KEYS[1], 'pendingSince', redisNow)
      pending = '1'
    else
      pending = '0'
    end
    return {'existing', cur[2], state, pending}
  end
end
local execution = tonumber(cur[2] or '0') + 1
redis.call('DEL', KEYS[1], KEYS[3])
local fields = {
  'runId', ARGV[1], 'state', 'queued', 'execution', execution, 'peerId', '',
  'taskId', ARGV[3], 'jobId', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[5],
  'startedAt', '', 'finishedAt', '', 'error', '', 'reason', ''}
if ARGV[7] == '1' then
  fields[#fields + 1] = 'pendingSince'
  fields[#fields + 1] = redisNow
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
local outcome = 'created'
if state then outcome = 'resubmitted' end
return {outcome, tostring(execution), 'queued', ARGV[7]}
