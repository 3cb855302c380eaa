-- Compare-and-set of a run's state: the state machine itself lives in
-- TypeScript (common/src/runs/run-state.ts); the caller passes the states
-- from which the event is legal and the resulting state. A final state can
-- carry its pushes to IVIS-core: they go to the push outbox in the same step,
-- so a process killed right after the change cannot lose them.
-- KEYS[1] run record hash  KEYS[2] run index zset  KEYS[3] a peer's runs set
-- KEYS[4] push outbox hash  KEYS[5] push outbox due zset
-- ARGV[1] comma-separated allowed current states  ARGV[2] new state
-- ARGV[3] required execution ('' = any)  ARGV[4] required peerId ('' = any)
-- ARGV[5] peerId to record ('-' = keep, '' = clear)
-- ARGV[6] peer runs op: 'add' | 'rem' | 'none' (on KEYS[3])  ARGV[7] now (ms)
-- ARGV[8] outbox entry id ('' = none)  ARGV[9] outbox entry (JSON)
-- ARGV[10] outbox due time (ms; other drainers leave the entry alone until then)
-- ARGV[11] channel to announce a change on ('' = none): the run events channel,
--          where a RunStateMessage {runId, execution, state, peerId, at: now}
--          goes out in the same step as the change (so in the order of the changes)
-- ARGV[12] that message's peerId
-- ARGV[13..] field/value pairs to set as well
-- Returns {1, new state, execution} on success, {0, current state or '', execution or ''} otherwise.
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution', 'peerId')
local state, execution, peer = cur[1], cur[2], cur[3]
if not state then return {0, '', ''} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed then return {0, state, execution} end
if ARGV[3] ~= '' and ARGV[3] ~= execution then return {0, state, execution} end
if ARGV[4] ~= '' and ARGV[4] ~= peer then return {0, state, execution} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updatedAt', ARGV[7])
if ARGV[5] ~= '-' then redis.call('HSET', KEYS[1], 'peerId', ARGV[5]) end
for i = 13, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
local runId = redis.call('HGET', KEYS[1], 'runId')
if ARGV[6] == 'add' then redis.call('SADD', KEYS[3], runId) end
if ARGV[6] == 'rem' then redis.call('SREM', KEYS[3], runId) end
redis.call('ZADD', KEYS[2], ARGV[7], runId)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[8], ARGV[9])
  redis.call('ZADD', KEYS[5], ARGV[10], ARGV[8])
end
if ARGV[11] ~= '' then
  redis.call('PUBLISH', ARGV[11], '{"runId":' .. runId .. ',"execution":' .. execution
    .. ',"state":' .. cjson.encode(ARGV[2]) .. ',"peerId":' .. cjson.encode(ARGV[12])
    .. ',"at":' .. ARGV[7] .. '}')
end
return {1, ARGV[2], execution}
