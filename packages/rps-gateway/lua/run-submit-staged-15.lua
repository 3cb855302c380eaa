#!lua
-- run-submit-enqueue-n.lua for one run whose body an upload staged in Redis
-- (`{rps}:upload:<uploadId>`, RunUploadStore) instead of passing it as an
-- argument: the composite is pasted in unchanged as a function where the
-- marker below stands (run-submit.store.ts), called for a batch of this one
-- run with an empty body, and when it recorded a new execution the staged
-- key is renamed over the request key it wrote, losing the staging TTL; for
-- a live run (`existing`, nothing recorded) the staged key is deleted. One
-- atomic step, so a body is stored only together with its record and job,
-- and the megabytes are moved, never copied through Lua.
-- KEYS[1..13] run-submit-enqueue-n.lua's keys for one run (index, the queue's
--             nine, then record, request, output)
-- KEYS[14]    the staged body
-- KEYS[15]    its seal, written by the upload after the last byte: its value is the length
-- ARGV[1..9]  run-submit-enqueue-n.lua's arguments for one run (ARGV[7], the body, empty)
-- ARGV[10]    the staged body's length in bytes
-- Returns the composite's reply for the run: {outcome, execution, state,
-- pending}, or {'error', message}. A staged body that is not sealed or of
-- another length (a Redis restart lost writes, or the TTL ran out) fails
-- with `RPSSTAGED` before anything is written, unless the run is live: then
-- no body is needed (a retry after a lost reply finds its own submit) and
-- the composite answers `existing`. The seal goes with the staged body.
local composite = function(KEYS, ARGV)
--@include run-submit-enqueue
end
local record, request, staged = KEYS[11], KEYS[12], KEYS[14]
local sealed = redis.call('GET', KEYS[15]) == ARGV[10]
  and redis.call('STRLEN', staged) == tonumber(ARGV[10])
if not sealed then
  local state = redis.call('HGET', record, 'state')
  local live = state ~= false
  if live then
    for s in string.gmatch(ARGV[1], '[^,]+') do
      if s == state then live = false end
    end
  end
  if not live then
    return redis.error_reply('RPSSTAGED the staged run body is missing or incomplete')
  end
end
local keys = {}
for i = 1, 13 do keys[i] = KEYS[i] end
local args = {}
for i = 1, 9 do args[i] = ARGV[i] end
local result = composite(keys, args)[1]
redis.call('DEL', KEYS[15])
if result[1] == 'existing' or result[1] == 'error' then
  redis.call('DEL', staged)
else
  redis.call('RENAME', staged, request)
  redis.call('PERSIST', request)
end
return result
