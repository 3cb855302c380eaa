#!lua
-- run-submit-enqueue-n.lua for one run whose body a large upload staged in
-- Redis (`{rps}:upload:<uploadId>`, RunUploadStore) with its seal, written
-- after the last byte: the composite is pasted in unchanged as a function
-- where the marker below stands (run-submit.store.ts) and called for a batch
-- of this one run, with the upload as its staged body. A staged body that
-- is not sealed or of another length (a Redis restart lost writes, or the
-- TTL ran out) is deleted first, so the composite answers `lost` without
-- writing anything, unless the run is live: then no body is needed (a retry
-- after a lost reply finds its own submit) and it answers `existing`. The
-- seal goes with the staged body.
-- KEYS[1..14] run-submit-enqueue-n.lua's keys for one run (index, the queue's
--             nine, then record, request, output and the staged body)
-- KEYS[15]    the staged body's seal: its value is the length
-- ARGV[1..8]  run-submit-enqueue-n.lua's arguments for one run
-- ARGV[9]     the staged body's length in bytes
-- Returns the composite's reply for the run.
local composite = function(KEYS, ARGV)
--@include run-submit-enqueue
end
local staged = KEYS[14]
local sealed = redis.call('GET', KEYS[15]) == ARGV[9]
  and redis.call('STRLEN', staged) == tonumber(ARGV[9])
if not sealed then redis.call('DEL', staged) end
local keys = {}
for i = 1, 14 do keys[i] = KEYS[i] end
local args = {}
for i = 1, 8 do args[i] = ARGV[i] end
local result = composite(keys, args)[1]
redis.call('DEL', KEYS[15])
return result
