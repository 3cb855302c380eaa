-- Appends a chunk to a run's output, only while that execution's record
-- exists: a deleted (or resubmitted) run never gets output recreated by a
-- late writer.
-- KEYS[1] run record hash  KEYS[2] run output string
-- ARGV[1] execution  ARGV[2] chunk
-- Returns the output's new length, or -1 when the record or execution differs.
if redis.call('HGET', KEYS[1], 'execution') ~= ARGV[1] then return -1 end
return redis.call('APPEND', KEYS[2], ARGV[2])
