#!lua
-- The gateway's acknowledgements of one or more submits in one script (the
-- POSTs whose submits came back together answer together): for each run,
-- common's run-acknowledge-1.lua, pasted in unchanged as a function by
-- run-ack.store.ts where the marker stands. An acknowledged run whose
-- submit created an execution is announced on the run events channel (a
-- hint for subscribers: the record is the truth) in the same step, so no
-- separate PUBLISH is sent. Every acknowledged run's execution is also
-- published on the run's own acknowledgement channel, which an agent whose
-- claim found the run pending listens to (so it need not poll; nobody
-- listens to it otherwise, and a PUBLISH to no subscriber costs a lookup).
-- KEYS[i]  run i's record hash (i = 1..N; the key count varies, hence `-n`)
-- ARGV[1]  the run events channel
-- ARGV[4i-2] .. ARGV[4i+1]: per run i, four values from ARGV[2]: execution,
--          longest allowed time since `pendingSince` (ms), the event to
--          publish when acknowledged now ('' for none), and the run's
--          acknowledgement channel
-- Returns run-acknowledge-1.lua's answer per run, in order.
local acknowledge = function(KEYS, ARGV)
--@include run-acknowledge
end
local results = {}
for i = 1, #KEYS do
  local a = 4 * i - 2
  local result = acknowledge({KEYS[i]}, {ARGV[a], ARGV[a + 1]})
  if result == 'acked' then
    if ARGV[a + 2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[a + 2]) end
    redis.call('PUBLISH', ARGV[a + 3], ARGV[a])
  end
  results[i] = result
end
return results
