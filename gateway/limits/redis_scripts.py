"""The Lua scripts `RedisLimiter` runs; each is atomic on the Redis server.

Why server time: every script reads `redis.call('TIME')`, so all replicas
judge against one clock; a replica whose clock is skewed would otherwise
grant itself a fresher allowance (or lease) than the others see. Since
Redis 7 scripts replicate their effects, so reading TIME before writing is safe.

Why `%.17g`: Lua 5.1 turns numbers into strings with 14 significant digits,
which would round a microsecond timestamp (16 digits) to 100 µs; TATs are
written and returned as full-precision strings instead.
"""

from __future__ import annotations

# Multi-key GCRA, all-or-nothing. KEYS[i] holds request i's TAT (µs, absent =
# rested). ARGV holds 3 values per request: interval (µs), burst, cost.
# Pass 1 checks every request against the TATs as pass 1 would leave them
# (so a repeated key is charged cumulatively) and remembers the longest wait;
# pass 2 writes only if nothing was refused. A line-by-line copy of gcra.check.
# Returns {0, '0'} when admitted, else {index of the refusing request, wait µs}.
ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local pending = {}
local worst, worst_wait = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = pending[key] or tonumber(redis.call('GET', key)) or now
  local start = math.max(tat, now)
  local wait = start + (cost - burst) * interval - now
  if wait > 1 then
    if wait > worst_wait then worst, worst_wait = i, wait end
  else
    pending[key] = start + cost * interval
  end
end
if worst > 0 then
  return {worst, string.format('%.17g', worst_wait)}
end
for key, tat in pairs(pending) do
  local ttl_ms = math.floor((tat - now) / 1000) + 1
  redis.call('SET', key, string.format('%.17g', tat), 'PX', string.format('%d', ttl_ms))
end
return {0, '0'}
"""

# Shared by the slot scripts: the key lives as long as its longest lease.
_SLOT_PRELUDE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function expire_with_last_lease()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], string.format('%d', tonumber(last[2]) - now + 1))
end
"""

# Take a slot. KEYS[1] is a ZSET of slot id -> lease expiry (ms, server time).
# ARGV: max slots, lease ms, new slot id. Drops expired leases, then adds the
# slot if fewer than max remain. Returns {1, '0'} or {0, ms until the oldest
# lease expires}.
ACQUIRE_SLOT = (
    _SLOT_PRELUDE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  expire_with_last_lease()
  return {1, '0'}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, string.format('%d', tonumber(first[2]) - now)}
"""
)

# Extend a lease. KEYS[1] as above; ARGV: slot id, lease ms. A lease that has
# already run out is gone (its capacity may have been taken), so it is removed
# and 0 returned; otherwise it runs until now + lease and 1 is returned.
RENEW_SLOT = (
    _SLOT_PRELUDE
    + """
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry or expiry <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
expire_with_last_lease()
return 1
"""
)
