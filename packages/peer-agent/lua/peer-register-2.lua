-- An agent's registration at start: writes its whole record (dropping stale
-- fields) and its `peers` score, keeping what must survive a restart (a drain
-- asked before it) and never undoing an operator's removal.
-- KEYS[1] peer hash  KEYS[2] peers zset
-- ARGV[1] peerId  ARGV[2] now (ms)  ARGV[3..] the full record as field/value
-- pairs (state and drain are decided here)
-- Returns {previous state or '', previous drain flag ('1'/'0'), state written
-- or '' when nothing was written (the peer is removed)}.
local cur = redis.call('HMGET', KEYS[1], 'state', 'drain')
local state, drain = cur[1] or '', cur[2] or '0'
if state == 'removed' then return {state, drain, ''} end
local own = 'active'
if drain == '1' then own = 'draining' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[1], 'state', own, 'drain', drain)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {state, drain, own}
