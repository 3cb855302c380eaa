-- Records a peer's reported address if it differs from the last one
-- recorded, atomically, so that of several watchdog replicas exactly one
-- records (and announces) each change.
-- KEYS[1] the peer's address history list (newest first, JSON)
-- ARGV[1] address  ARGV[2] now (ms)  ARGV[3] history cap
-- Returns the previous address ('' on the first sighting) when recorded, nil when unchanged.
local previous = ''
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local ok, entry = pcall(cjson.decode, head)
  if ok and type(entry) == 'table' and type(entry.address) == 'string' then
    if entry.address == ARGV[1] then return false end
    previous = entry.address
  end
end
local before = cjson.null
if previous ~= '' then before = previous end
redis.call('LPUSH', KEYS[1], cjson.encode({ address = ARGV[1], previous = before, at = tonumber(ARGV[2]) }))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return previous
