-- A state change the agent makes itself (drain, undrain, clean stop): applied
-- only to an existing record that no operator removed, atomically, so a
-- removal that lands while the agent stops or drains is never overwritten.
-- KEYS[1] peer hash
-- ARGV[1] state (draining, active, stopped)  ARGV[2] drain flag '1'/'0', or ''
-- to keep it  ARGV[3] timestamp field to set to ARGV[4], or ''  ARGV[4] now (ms)
-- Returns the previous state, '' when there is no record (nothing written).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'removed' then return state end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'drain', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
return state
