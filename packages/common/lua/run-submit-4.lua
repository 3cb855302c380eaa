-- Records a run submitted by IVIS-core, atomically and idempotently.
-- KEYS[1] run record hash   KEYS[2] run request string
-- KEYS[3] run output string KEYS[4] run index zset
-- ARGV[1] runId  ARGV[2] raw request body  ARGV[3] taskId  ARGV[4] jobId
-- ARGV[5] now (ms)  ARGV[6] comma-separated final states
-- Returns {outcome, execution, state}: outcome 'existing' when the run is
-- live (nothing changed), 'created' for a new run, 'resubmitted' when a final
-- run starts a new execution (IVIS-core reuses run ids only that way).
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  local final = false
  for s in string.gmatch(ARGV[6], '[^,]+') do
    if s == state then final = true end
  end
  if not final then
    return {'existing', redis.call('HGET', KEYS[1], 'execution'), state}
  end
end
local execution = tonumber(redis.call('HGET', KEYS[1], 'execution') or '0') + 1
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('HSET', KEYS[1],
  'runId', ARGV[1], 'state', 'queued', 'execution', execution, 'peerId', '',
  'taskId', ARGV[3], 'jobId', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[5],
  'startedAt', '', 'finishedAt', '', 'error', '', 'reason', '')
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
local outcome = 'created'
if state then outcome = 'resubmitted' end
return {outcome, tostring(execution), 'queued'}
