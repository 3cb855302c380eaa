-- An operator's (or remote-manager's) removal of a peer: out of the pool for
-- good. The record and its `peers` member stay until retention prunes them
-- (peer-prune-6.lua), so liveness still recovers the peer's runs and the
-- removal is visible; the agent's own scripts never overwrite `removed`.
-- KEYS[1] peer hash  KEYS[2] peers zset
-- ARGV[1] peerId  ARGV[2] now (ms)
-- Returns the previous state: '' when there is no such peer (nothing written),
-- 'removed' when it already was (nothing written, removedAt kept).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'removed' then return state end
redis.call('HSET', KEYS[1], 'state', 'removed', 'removedAt', ARGV[2])
local heartbeat = redis.call('HGET', KEYS[1], 'heartbeatAt') or ARGV[2]
redis.call('ZADD', KEYS[2], 'NX', heartbeat, ARGV[1])
return state
