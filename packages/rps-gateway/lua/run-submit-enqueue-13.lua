#!lua
-- The gateway's submit and its queue job in one atomic step (one round trip
-- instead of two): common's run-submit-4.lua, then, when the execution must
-- be queued, BullMQ's own addStandardJob script, both pasted in unchanged as
-- functions by run-submit.store.ts where the two markers below stand (the
-- add's two `cmsgpack.unpack(ARGV[n])` take the tables unpacked here, so
-- nothing is packed twice and the stored options keep their order). The
-- job id and data depend on the execution, which only the submit knows, so
-- they are set here: id `run-<runId>-<execution>` (common's runJobId) and
-- data `{"runId":<runId>,"execution":<execution>}` (JSON.stringify's bytes).
-- KEYS[1..4]  run-submit-4.lua's keys (record, request, output, index)
-- KEYS[5..13] addStandardJob's keys of the `runs` queue (wait, paused, meta,
--             id, completed, delayed, active, events, marker)
-- ARGV[1..7]  run-submit-4.lua's arguments (ARGV[1] the run id)
-- ARGV[8]     addStandardJob's msgpacked arguments, as BullMQ built them for
--             this job (its id is replaced here)
-- ARGV[9]     addStandardJob's msgpacked job options (their jobId replaced here)
-- Returns run-submit-4.lua's {outcome, execution, state, pending}. An error
-- of the add (e.g. WRONGTYPE) aborts the script after the record was
-- written: the run then stays pending and never starts (the gateway, or
-- reconciliation, fails it), as when a separate add failed.
local submit = function(KEYS, ARGV)
--@include run-submit
end
local addStandardJob = function(KEYS, ARGV)
--@include addStandardJob
end
local result = submit({KEYS[1], KEYS[2], KEYS[3], KEYS[4]},
  {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]})
if result[1] ~= 'existing' or result[3] == 'queued' then
  local execution = result[2]
  local jobId = 'run-' .. ARGV[1] .. '-' .. execution
  local args = cmsgpack.unpack(ARGV[8])
  args[2] = jobId
  local opts = cmsgpack.unpack(ARGV[9])
  opts['jobId'] = jobId
  local data = '{"runId":' .. ARGV[1] .. ',"execution":' .. execution .. '}'
  local added = addStandardJob(
    {KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]},
    {args, data, opts})
  if type(added) == 'number' and added < 0 then
    return redis.error_reply('ERR run job not added: ' .. added)
  end
end
return result
