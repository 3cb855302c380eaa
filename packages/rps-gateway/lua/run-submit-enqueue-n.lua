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
-- The bodies are not arguments: each is already in Redis under its own
-- staging key (`{rps}:upload:<id>`, written by the SET that precedes this
-- script in the same MULTI, or by a large body's upload), because a body
-- written from Lua costs Redis about twice what the same SET costs outside
-- it. The submit records an empty body, and the staging key is then renamed
-- over it (losing its TTL) for a new execution, or deleted when nothing was
-- recorded, so megabytes are moved, never copied through Lua.
-- The key count varies with the batch (hence `-n`):
-- KEYS[1]       the run index zset
-- KEYS[2..10]   addStandardJob's keys of the `runs` queue (wait, paused, meta,
--               id, completed, delayed, active, events, marker)
-- KEYS[7+4i..10+4i], run i = 1..N: record, request, output, staged body
-- ARGV[1]  comma-separated final states   ARGV[2] '1': new executions wait for an acknowledgement
-- ARGV[3]  now (ms, the gateway's clock: createdAt, the job's timestamp)
-- ARGV[4]  addStandardJob's msgpacked arguments, as BullMQ builds them for a
--          run job (its id and timestamp are replaced here)
-- ARGV[5]  addStandardJob's msgpacked job options (their jobId replaced here)
-- ARGV[3+3i..5+3i], run i: runId, taskId, jobId
-- Returns, per run, run-submit-4.lua's {outcome, execution, state, pending};
-- {'error', message} when BullMQ refused the job: that run stays pending
-- and never starts (the gateway, or reconciliation, fails it); or
-- {'lost', ''} when its staged body is not in Redis and the run is not live
-- (nothing is written: a restart lost the body, or its TTL ran out). The
-- other runs of the batch are not affected. An error raised by a Redis
-- command (e.g. WRONGTYPE) aborts the script: the runs already written stay
-- pending and never start, and every POST of the batch answers an error.
local submit = function(KEYS, ARGV)
--@include run-submit
end
local addStandardJob = function(KEYS, ARGV)
--@include addStandardJob
end
-- Whether the run is recorded and not final (a submit of it changes nothing).
local live = function(record)
  local state = redis.call('HGET', record, 'state')
  if not state then return false end
  for s in string.gmatch(ARGV[1], '[^,]+') do
    if s == state then return false end
  end
  return true
end
local results = {}
local runs = (#ARGV - 5) / 3
for i = 1, runs do
  local k, a = 7 + 4 * i, 3 + 3 * i
  local record, request, staged = KEYS[k], KEYS[k + 1], KEYS[k + 3]
  local runId = ARGV[a]
  local result
  if redis.call('EXISTS', staged) == 0 and not live(record) then
    result = {'lost', ''}
  else
    result = submit({record, request, KEYS[k + 2], KEYS[1]},
      {runId, '', ARGV[a + 1], ARGV[a + 2], ARGV[3], ARGV[1], ARGV[2]})
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
    if result[1] == 'existing' or result[1] == 'error' then
      redis.call('DEL', staged)
    else
      redis.call('RENAME', staged, request)
      redis.call('PERSIST', request)
    end
  end
  results[i] = result
end
return results
