#!lua
-- The gateway's submits and their queue jobs, for one or more runs in one
-- atomic script (group commit: the POSTs that arrive while the previous
-- batch is in Redis go together, so a run costs one script call of many).
-- For each run: common's run-submit-4.lua, pasted in unchanged as a function
-- by run-submit.store.ts where the marker below stands, then, when the
-- execution must be queued, BullMQ's add of the run's job: what BullMQ's own
-- addStandardJob script writes for a job of this shape (no parent, repeat,
-- deduplication, delay, priority or LIFO), in the same order, with what does
-- not change within a batch (the job options' JSON, the queue's event
-- limit, whether it is paused or at its concurrency) worked out once per
-- batch instead of once per run, and the id counter and the marker written
-- once for the batch, at its end. BullMQ still builds the add's keys,
-- arguments and options itself (ARGV[4], ARGV[5]); a shape this script does
-- not know fails every call with `RPSBULL` before anything is written, and
-- test/run-submit-job.test.ts compares everything it writes with what
-- `queue.add` writes. The job id and data depend on the execution, which
-- only the submit knows: id `run-<runId>-<execution>` (common's runJobId),
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
-- KEYS[2..10]   BullMQ's add keys of the `runs` queue (wait, paused, meta,
--               id, completed, delayed, active, events, marker)
-- KEYS[7+4i..10+4i], run i = 1..N: record, request, output, staged body
-- ARGV[1]  comma-separated final states   ARGV[2] '1': new executions wait for an acknowledgement
-- ARGV[3]  now (ms, the gateway's clock: createdAt, the job's timestamp)
-- ARGV[4]  addStandardJob's msgpacked arguments, as BullMQ builds them for a
--          run job: key prefix, job id (replaced here), name, timestamp
--          (ARGV[3] is used), then six that must be nil (parent, repeat...)
-- ARGV[5]  addStandardJob's msgpacked job options (their jobId replaced here)
-- ARGV[3+3i..5+3i], run i: runId, taskId, jobId
-- Returns, per run, run-submit-4.lua's {outcome, execution, state, pending},
-- or {'lost', ''} when its staged body is not in Redis and the run is not
-- live (nothing is written: a restart lost the body, or its TTL ran out; the
-- other runs of the batch are not affected). An error raised by a Redis
-- command (e.g. WRONGTYPE) aborts the script: the runs already written stay
-- pending and never start, and every POST of the batch answers an error.
local submit = function(KEYS, ARGV)
--@include run-submit
end
local rcall = redis.call
local waitKey, metaKey, idKey, activeKey, eventsKey, markerKey =
  KEYS[2], KEYS[4], KEYS[5], KEYS[8], KEYS[9], KEYS[10]
local bull = cmsgpack.unpack(ARGV[4])
for i = 5, 10 do
  if bull[i] ~= nil then
    return redis.error_reply("RPSBULL BullMQ's add argument " .. i .. ' is set: not a plain job')
  end
end
local keyPrefix, jobName = bull[1], bull[3]
-- The options as addStandardJob stores them (cjson.encode of the unpacked
-- table, whose key order a new jobId value does not change), split around the id.
local opts = cmsgpack.unpack(ARGV[5])
local knownOptions = {attempts = true, removeOnComplete = true, removeOnFail = true, jobId = true}
for name in pairs(opts) do
  if not knownOptions[name] then
    return redis.error_reply("RPSBULL BullMQ's job option '" .. tostring(name) .. "' is not known here")
  end
end
opts['jobId'] = 'RPS-JOB-ID'
local optsJson = cjson.encode(opts)
local at = string.find(optsJson, '"RPS-JOB-ID"', 1, true)
local optsBefore, optsAfter = string.sub(optsJson, 1, at), string.sub(optsJson, at + 11)
-- Worked out at the first add of the batch: the queue's event limit (set
-- to BullMQ's default if absent) and whether jobs get a marker.
local maxEvents, markWaiting
-- BullMQ's add increments the id counter for every job, a duplicate too,
-- and sets the marker for every job it adds to a queue that takes them;
-- within one atomic script once for the batch (INCRBY, one ZADD of the same
-- member) leaves the same keys as once per job.
local adds, marked = 0, false
local addRunJob = function(jobId, data)
  adds = adds + 1
  if maxEvents == nil then
    maxEvents = rcall('HGET', metaKey, 'opts.maxLenEvents')
    if not maxEvents then
      maxEvents = 10000
      rcall('HSET', metaKey, 'opts.maxLenEvents', maxEvents)
    end
    local meta = rcall('HMGET', metaKey, 'paused', 'concurrency')
    markWaiting = not meta[1] and not (meta[2] and rcall('LLEN', activeKey) >= tonumber(meta[2]))
  end
  local jobKey = keyPrefix .. jobId
  if rcall('EXISTS', jobKey) == 1 then
    rcall('XADD', eventsKey, 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', jobId)
    return
  end
  rcall('HMSET', jobKey, 'name', jobName, 'data', data, 'opts', optsBefore .. jobId .. optsAfter,
    'timestamp', ARGV[3], 'delay', 0, 'priority', 0)
  rcall('XADD', eventsKey, '*', 'event', 'added', 'jobId', jobId, 'name', jobName)
  rcall('LPUSH', waitKey, jobId)
  marked = marked or markWaiting
  rcall('XADD', eventsKey, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
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
      addRunJob('run-' .. runId .. '-' .. execution, '{"runId":' .. runId .. ',"execution":' .. execution .. '}')
    end
    if result[1] == 'existing' then
      redis.call('DEL', staged)
    else
      redis.call('RENAME', staged, request)
      redis.call('PERSIST', request)
    end
  end
  results[i] = result
end
if adds > 0 then rcall('INCRBY', idKey, adds) end
if marked then rcall('ZADD', markerKey, 0, '0') end
return results
