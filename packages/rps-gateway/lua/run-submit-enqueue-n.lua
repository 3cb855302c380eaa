#!lua
-- The gateway's submits and their queue jobs, for one or more runs in one
-- atomic script (group commit: the POSTs that arrive while the previous
-- batch is in Redis go together, so a run costs one script call of many).
-- For each run: common's run-submit-4.lua, then, when the execution must be
-- queued, BullMQ's own addStandardJob script, both pasted in unchanged as
-- functions by run-submit.store.ts where the two markers below stand (the
-- add's two `cmsgpack.unpack(ARGV[n])` take the tables unpacked here, so
-- nothing is packed twice and the stored options keep their order). The
-- job id and data depend on the execution, which only the submit knows, so
-- they are set here: id `run-<runId>-<execution>` (common's runJobId) and
-- data `{"runId":<runId>,"execution":<execution>}` (JSON.stringify's bytes).
-- The key count varies with the batch (hence `-n`):
-- KEYS[1]       the run index zset
-- KEYS[2..10]   addStandardJob's keys of the `runs` queue (wait, paused, meta,
--               id, completed, delayed, active, events, marker)
-- KEYS[8+3i..10+3i], run i = 1..N: record, request, output
-- ARGV[1]  comma-separated final states   ARGV[2] '1': new executions wait for an acknowledgement
-- ARGV[3]  now (ms, the gateway's clock: createdAt, the job's timestamp)
-- ARGV[4]  addStandardJob's msgpacked arguments, as BullMQ builds them for a
--          run job (its id and timestamp are replaced here)
-- ARGV[5]  addStandardJob's msgpacked job options (their jobId replaced here)
-- ARGV[2+4i..5+4i], run i: runId, raw request body, taskId, jobId
-- Returns, per run, run-submit-4.lua's {outcome, execution, state, pending},
-- or {'error', message} when BullMQ refused the job: that run stays pending
-- and never starts (the gateway, or reconciliation, fails it); the other
-- runs of the batch are not affected. An error raised by a Redis command
-- (e.g. WRONGTYPE) aborts the script: the runs already written stay pending
-- and never start, and every POST of the batch answers an error.
local submit = function(KEYS, ARGV)
--@include run-submit
end
local addStandardJob = function(KEYS, ARGV)
--@include addStandardJob
end
local results = {}
local runs = (#ARGV - 5) / 4
for i = 1, runs do
  local k, a = 8 + 3 * i, 2 + 4 * i
  local runId = ARGV[a]
  local result = submit({KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[1]},
    {runId, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[3], ARGV[1], ARGV[2]})
  if result[1] ~= 'existing' or result[3] == 'queued' then
    local execution = result[2]
    local jobId = 'run-' .. runId .. '-' .. execution
    local args = cmsgpack.unpack(ARGV[4])
    args[2] = jobId
    args[4] = tonumber(ARGV[3])
    local opts = cmsgpack.unpack(ARGV[5])
    opts['jobId'] = jobId
    local data = '{"runId":' .. runId .. ',"execution":' .. execution .. '}'
    local added = addStandardJob(
      {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]},
      {args, data, opts})
    if type(added) == 'number' and added < 0 then
      result = {'error', 'run job not added: ' .. added}
    end
  end
  results[i] = result
end
return results
