"""The Redis roster's Lua scripts: one per change, so that counts and notices agree.

Joins and leaves are published with channels.py's Lua (`join_payload`, `leave_payload`).
"""

from __future__ import annotations

from chat.delivery import channels

# KEYS: u:<key>, nu:<node>, node:<node>, epoch, rebuilding. ARGV: key, name, avatar, digest of
# the token given ('' if none), digest of a fresh token, legacy (0/1), again (1: claimed again
# after a loss), the rebuilding time in ms. Returns {1, name, avatar, created}, {0} (held, token
# wrong) or {-1, lost, found} (rebuilding: no new name now; lost = 1 if this node's own key is
# gone, found = 1 if this claim is the first to find the roster lost).
CLAIM = """#!lua
local user, mine, again = KEYS[1], KEYS[2], ARGV[7] == '1'
local lost = 1 - redis.call('EXISTS', KEYS[3])
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[4], '1')
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[8])
  if not again then return {-1, lost, 1} end
end
if not again and lost == 1 then return {-1, 1, 0} end
if redis.call('SISMEMBER', mine, ARGV[1]) == 1 then
  return {1, redis.call('HGET', user, 'name'), redis.call('HGET', user, 'avatar'), 0}
end
local created = 0
if redis.call('EXISTS', user) == 1 then
  if ARGV[4] == '' or redis.call('HGET', user, 'th') ~= ARGV[4] then return {0} end
else
  if not again and redis.call('EXISTS', KEYS[5]) == 1 then return {-1, 0, 0} end
  redis.call('HSET', user, 'name', ARGV[2], 'avatar', ARGV[3], 'th', ARGV[5], 'n', 0,
             'legacy', ARGV[6])
  created = 1
end
redis.call('HINCRBY', user, 'n', 1)
redis.call('SADD', mine, ARGV[1])
return {1, redis.call('HGET', user, 'name'), redis.call('HGET', user, 'avatar'), created}
"""

# KEYS: u:<key>, nu:<node>. ARGV: key.
RELEASE = """#!lua
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then redis.call('DEL', KEYS[1]) end
end
return 1
"""

# A page of a room's members (shared by ENTER and MEMBERS): {count, more, key, JSON, ...} for at
# most `limit` keys of the sorted set `order` from the ZRANGEBYLEX bound `after` ('-': the start).
_PAGE_FUNCTION = """
local function page(members, order, after, limit)
  local keys = redis.call('ZRANGEBYLEX', order, after, '+', 'LIMIT', 0, limit + 1)
  local reply = {redis.call('HLEN', members), 0}
  if #keys > limit then
    reply[2] = 1
    table.remove(keys)
  end
  if #keys > 0 then
    local values = redis.call('HMGET', members, unpack(keys))
    for i, key in ipairs(keys) do
      if values[i] then
        reply[#reply + 1] = key
        reply[#reply + 1] = values[i]
      end
    end
  end
  return reply
end
"""

# KEYS: p:<room>, pc:<room>, np:<node>, po:<room>. ARGV: room, key, member JSON, channel, name,
# avatar, limit, guest ('1': the join notice says so), bot (the same). Returns the room's first
# `limit` members as page() does.
ENTER = "#!lua" + channels.LUA + _PAGE_FUNCTION + """
if redis.call('SADD', KEYS[3], ARGV[1] .. '\\31' .. ARGV[2]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
    redis.call('ZADD', KEYS[4], 0, ARGV[2])
    redis.call('PUBLISH', ARGV[4],
               join_payload(ARGV[1], ARGV[5], ARGV[6], redis.call('HLEN', KEYS[1]), ARGV[8],
                            ARGV[9]))
  end
end
return page(KEYS[1], KEYS[4], '-', tonumber(ARGV[7]))
"""

# KEYS: p:<room>, po:<room>. ARGV: ZRANGEBYLEX bound, limit.
MEMBERS = "#!lua" + _PAGE_FUNCTION + """
return page(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
"""

# The leave of one node's member (shared by EXIT and REAP): key prefix, channel prefix, room, key.
_LEAVE_FUNCTION = """
local function leave(prefix, scoped, room, key)
  local counts, members = prefix .. 'pc:' .. room, prefix .. 'p:' .. room
  if redis.call('HINCRBY', counts, key, -1) > 0 then return end
  redis.call('HDEL', counts, key)
  local member = redis.call('HGET', members, key)
  redis.call('HDEL', members, key)
  redis.call('ZREM', prefix .. 'po:' .. room, key)
  if member then
    redis.call('PUBLISH', scoped .. 'room:' .. room, leave_payload(
      room, cjson.decode(member).username, redis.call('HLEN', members)))
  end
end
"""

# KEYS: np:<node>. ARGV: key prefix, channel prefix, room, key.
EXIT = "#!lua" + channels.LUA + _LEAVE_FUNCTION + """
if redis.call('SREM', KEYS[1], ARGV[3] .. '\\31' .. ARGV[4]) == 1 then
  leave(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
end
return 1
"""

# KEYS: node:<id>, nodes, nu:<id>, np:<id>. ARGV: key prefix, channel prefix, id. Returns -1 if
# the node is alive, else how many members left.
REAP = "#!lua" + channels.LUA + _LEAVE_FUNCTION + """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local prefix, left = ARGV[1], 0
for _, pair in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local room, key = string.match(pair, '^(.*)\\31([^\\31]*)$')
  leave(prefix, ARGV[2], room, key)
  left = left + 1
end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local user = prefix .. 'u:' .. key
  if redis.call('HINCRBY', user, 'n', -1) <= 0 then redis.call('DEL', user) end
end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('SREM', KEYS[2], ARGV[3])
return left
"""

# KEYS: u:<key>, nu:<node>. ARGV: key. {name, token digest} if a node other than this one holds
# it, with a connection that is not a tutorial one.
ELSEWHERE = """#!lua
local name, held, legacy, th = unpack(redis.call('HMGET', KEYS[1], 'name', 'n', 'legacy',
                                                 'th'))
if not name or legacy == '1' then return false end
local here = redis.call('SISMEMBER', KEYS[2], ARGV[1])
if tonumber(held) - here > 0 then return {name, th} end
return false
"""

# KEYS: node:<id>, nodes, epoch, rebuilding. ARGV: id, timeout in ms, starting (1 at the node's
# start: an absent epoch is then a new chat, not a lost one). Returns 1 if the roster was lost.
REGISTER = """#!lua
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[3], '1')
if ARGV[3] == '1' then return 0 end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
return 1
"""

# KEYS: u:<key>. ARGV: ms since the epoch. The user's last activity (`act`), only ever later,
# and only for a name that is online (a hash made here would read as a name held).
ACTIVE = """#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'act') or '0') then
  redis.call('HSET', KEYS[1], 'act', ARGV[1])
end
return 1
"""

# KEYS: u:<key> of each user asked. Returns per key its `act` ('0' if none yet), or '' when
# the name is online on no node.
ACTIVITY = """#!lua
local out = {}
for i, key in ipairs(KEYS) do
  local name, act = unpack(redis.call('HMGET', key, 'name', 'act'))
  if name then out[i] = act or '0' else out[i] = '' end
end
return out
"""

SCRIPTS = (CLAIM, RELEASE, ENTER, EXIT, REAP, ELSEWHERE, REGISTER, MEMBERS, ACTIVE, ACTIVITY)
