-- The agent's `dispatch` of a run job, with the wait for the gateway's
-- acknowledgement folded in: one round trip instead of a read and a
-- compare-and-set. Exactly what common's run-apply script does for the
-- `dispatch` event (queued -> dispatched, peerId set, the run added to the
-- peer's set, the index touched), except that a pending execution (its submit
-- not acknowledged yet: `pendingSince` set) is left alone and reported.
-- KEYS[1] run record hash  KEYS[2] run index zset  KEYS[3] the peer's runs set
-- ARGV[1] execution  ARGV[2] peerId  ARGV[3] now (ms)
-- ARGV[4] the new state (`dispatched`, from the state machine in TypeScript)
-- ARGV[5] channel to announce the dispatch on ('' = none), as run-apply-5.lua does
-- Returns {1, new state, execution} when taken, {2, 'queued', execution}
-- while pending, {0, current state or '', execution or ''} otherwise.
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution', 'pendingSince')
local state, execution, pending = cur[1], cur[2], cur[3]
if not state then return {0, '', ''} end
if state ~= 'queued' or execution ~= ARGV[1] then return {0, state, execution} end
if pending and pending ~= '' then return {2, state, execution} end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'updatedAt', ARGV[3], 'peerId', ARGV[2])
local runId = redis.call('HGET', KEYS[1], 'runId')
redis.call('SADD', KEYS[3], runId)
redis.call('ZADD', KEYS[2], ARGV[3], runId)
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], '{"runId":' .. runId .. ',"execution":' .. execution
    .. ',"state":' .. cjson.encode(ARGV[4]) .. ',"peerId":' .. cjson.encode(ARGV[2])
    .. ',"at":' .. ARGV[3] .. '}')
end
return {1, ARGV[4], execution}
