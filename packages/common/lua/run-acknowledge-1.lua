-- The gateway's acknowledgement of a submit, sent right before it answers
-- 200: the pending execution becomes startable. Refused when it comes later
-- than the gateway's deadline allows (measured on Redis's own clock from the
-- submit, so gateway and Redis clocks need not agree), so a slow or stalled
-- Redis can never make a run startable after the gateway gave up on it.
-- KEYS[1] run record hash
-- ARGV[1] execution  ARGV[2] longest allowed time since `pendingSince` (ms)
-- Returns 'acked' (now or before), 'late', 'gone' (no record),
-- 'changed' (another execution) or 'final' (the run ended meanwhile).
-- No writes that need memory (HDEL only), so it works at maxmemory too.
local cur = redis.call('HMGET', KEYS[1], 'state', 'execution', 'pendingSince')
local state, execution, pending = cur[1], cur[2], cur[3]
if not state then return 'gone' end
if execution ~= ARGV[1] then return 'changed' end
if not pending or pending == '' then return 'acked' end
-- Taken by an agent that does not wait for acknowledgements (an older
-- version): it is going to run, so the honest answer is the 200.
if state == 'dispatched' or state == 'running' then
  redis.call('HDEL', KEYS[1], 'pendingSince')
  return 'acked'
end
if state ~= 'queued' then return 'final' end
local t = redis.call('TIME')
local redisNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redisNow - tonumber(pending) > tonumber(ARGV[2]) then return 'late' end
redis.call('HDEL', KEYS[1], 'pendingSince')
return 'acked'
