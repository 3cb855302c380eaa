-- Marks a peer lost only while it is still silent: an agent whose heartbeat
-- lands between the scheduler's read and this write must not be declared lost.
-- KEYS[1] peer hash  KEYS[2] peers zset (peerId -> last heartbeat ms)
-- ARGV[1] peerId  ARGV[2] cutoff (ms; a heartbeat older than this is stale)  ARGV[3] now (ms)
-- Returns the last heartbeat (ms, as a string) when the peer was marked lost, '' otherwise.
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) >= tonumber(ARGV[2]) then return '' end
local state = redis.call('HGET', KEYS[1], 'state')
-- A stopped peer is silent on purpose (a clean shutdown): never lost.
if not state or state == 'lost' or state == 'removed' or state == 'stopped' then return '' end
redis.call('HSET', KEYS[1], 'state', 'lost', 'lostAt', ARGV[3])
return score
