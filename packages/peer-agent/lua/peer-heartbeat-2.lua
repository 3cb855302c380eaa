-- One heartbeat of an agent: refreshes its peer record and its score in the
-- peers zset, atomically, without undoing an operator's removal.
-- KEYS[1] peer hash  KEYS[2] peers zset
-- ARGV[1] peerId  ARGV[2] now (ms)  ARGV[3] address  ARGV[4] the agent's own
-- state (active or draining; its drain flag follows it)
-- ARGV[5..] the full record as field/value pairs (used when the hash is gone)
-- Returns {previous state or '', previous address or ''}. A 'removed' record
-- is left as it is (its score too, so retention can find and prune it): the
-- agent must stop taking runs.
local cur = redis.call('HMGET', KEYS[1], 'state', 'address')
local state, address = cur[1], cur[2]
if state == 'removed' then return {state, address or ''} end
if not state then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
else
  local drain = '0'
  if ARGV[4] == 'draining' then drain = '1' end
  redis.call('HSET', KEYS[1], 'heartbeatAt', ARGV[2], 'address', ARGV[3], 'state', ARGV[4], 'drain', drain)
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {state or '', address or ''}
