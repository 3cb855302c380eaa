-- An executor that hands runs to another runner (rjr) learned that the run's
-- job process really started: clears the record's `phase` ('building' since
-- the agent's `start`) and sets `startedAt`, only while that execution is
-- running, so a late answer never touches a stopped, deleted or resubmitted run.
-- KEYS[1] run record hash
-- ARGV[1] execution  ARGV[2] startedAt  ARGV[3] now (ms)
-- Returns 1 when written, 0 when the record, its execution or its state differs.
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution')
if cur[1] ~= 'running' or cur[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'phase', '', 'startedAt', ARGV[2], 'updatedAt', ARGV[3])
return 1
