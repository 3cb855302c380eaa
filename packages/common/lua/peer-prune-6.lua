-- Deletes what is left of a removed peer once its retention is over: record,
-- `peers` member, runs set, control stream, last sync probe, address history.
-- Only a peer still `removed` with removedAt at or before the cutoff goes, so
-- a peer re-admitted meanwhile (record rewritten) is never pruned.
-- KEYS[1] peer hash  KEYS[2] peers zset  KEYS[3] peer runs set
-- KEYS[4] control stream  KEYS[5] sync hash  KEYS[6] address history list
-- ARGV[1] peerId  ARGV[2] cutoff (ms)
-- Returns 1 when pruned, 0 otherwise.
local cur = redis.call('HMGET', KEYS[1], 'state', 'removedAt')
if cur[1] ~= 'removed' then return 0 end
if tonumber(cur[2] or '0') > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
