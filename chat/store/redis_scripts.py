"""The Redis store's Lua scripts (chat/store/redis.py), what they are given and what they answer."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from chat.delivery import channels
from chat.people.names import name_key
from chat.record import StoredMessage
from chat.store.base import CidReused

# KEYS: stream, counter, conversations set, retired, [cid key]
# ARGV: cap, window ms, conversation, username, avatar, text, ts, cid, has_to, to, channels...
# Publishes a new message on each channel (channels.py's `m`/`d` payload, from its Lua), in
# the same step as storing it: every node sees a room's messages in id order, and none stored
# goes unannounced.
# Returns {1, id} for a new message; for a repeated cid in its window {0, id, fields} (the
# original), {3, id, ts} (the original, deleted since), or {2} (used in another conversation).
# A cid key written before it held references holds the whole message: the same JSON fields.
APPEND = "#!lua" + channels.LUA + """
local stream, counter, rooms, retired, cidkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local window, ts = tonumber(ARGV[2]), tonumber(ARGV[7])
if cidkey then
  local seen = redis.call('GET', cidkey)
  if seen then
    local ref = cjson.decode(seen)
    if ts - tonumber(ref.ts) < window then
      if ref.conversation ~= ARGV[3] then
        return {2}
      end
      local at = ref.id .. '-0'
      local found = redis.call('XRANGE', stream, at, at)
      if #found == 1 then
        return {0, ref.id, found[1][2]}
      end
      return {3, ref.id, tostring(ref.ts)}
    end
  end
end
if redis.call('EXISTS', counter) == 0 then
  local start = tonumber(redis.call('GET', retired) or '0')
  if redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        start = math.max(start, tonumber(string.match(info[i + 1], '^(%d+)')))
      end
    end
  end
  redis.call('SET', counter, start)
end
local id = redis.call('INCR', counter)
local fields = {'u', ARGV[4], 'a', ARGV[5], 't', ARGV[6], 'ts', ARGV[7]}
local cid, to = false, false
if cidkey then
  table.insert(fields, 'c'); table.insert(fields, ARGV[8])
  cid = ARGV[8]
end
if ARGV[9] == '1' then
  table.insert(fields, 'to'); table.insert(fields, ARGV[10])
  to = ARGV[10]
end
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], id .. '-0', unpack(fields))
redis.call('SADD', rooms, ARGV[3])
if cidkey then
  local ref = cjson.encode({conversation = ARGV[3], id = tostring(id), ts = ARGV[7]})
  redis.call('SET', cidkey, ref, 'PX', ARGV[2])
end
local payload = message_payload(ARGV[3], string.format('%d', id), ARGV[4], ARGV[5], ARGV[6],
                                ARGV[7], cid, to)
for i = 11, #ARGV do
  redis.call('PUBLISH', ARGV[i], payload)
end
return {1, id}
"""

# KEYS: stream, counter, conversations set, retired. ARGV: conversation, cutoff ms.
# Deletes the conversation if its newest message is older than the cutoff (or it has none),
# raising `retired` to its last id first; returns the messages deleted, or -1 if it is kept.
RETIRE = """#!lua
local stream, counter = KEYS[1], KEYS[2]
local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local last = tonumber(redis.call('GET', counter) or '0')
if #newest == 1 then
  local fields = newest[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'ts' and tonumber(fields[i + 1]) >= tonumber(ARGV[2]) then
      return -1
    end
  end
  last = math.max(last, tonumber(string.match(newest[1][1], '^(%d+)')))
end
if last > tonumber(redis.call('GET', KEYS[4]) or '0') then
  redis.call('SET', KEYS[4], last)
end
local deleted = redis.call('XLEN', stream)
redis.call('DEL', stream, counter)
redis.call('SREM', KEYS[3], ARGV[1])
return deleted
"""


def stream_id(message_id: int) -> str:
    return f"{message_id}-0"


def entries(reply: object) -> list[tuple[str, dict[str, str]]]:
    """An XRANGE reply as the client gives it with decode_responses: (id, fields) pairs."""
    return cast("list[tuple[str, dict[str, str]]]", reply or [])


def from_entry(conversation: str, entry_id: str, fields: dict[str, str]) -> StoredMessage:
    return StoredMessage(conversation, int(entry_id.partition("-")[0]), fields["u"], fields["a"],
                         fields["t"], int(fields["ts"]), fields.get("c"), fields.get("to"))


def channels_of(message: StoredMessage, prefix: str) -> list[str]:
    """The channels a new message is announced on: its room's, or both parties' of a DM."""
    if message.to is None:
        return [channels.room(message.conversation, prefix)]
    parties = {name_key(message.username), name_key(message.to)}
    return [channels.user(key, prefix) for key in sorted(parties)]


def appended(message: StoredMessage, reply: list[Any]) -> tuple[StoredMessage, bool] | CidReused:
    """The append script's reply (see _APPEND) as append's result, or CidReused to raise."""
    kind = int(reply[0])
    if kind == 1:
        return dataclasses.replace(message, id=int(reply[1])), True
    if kind == 2:
        assert message.cid is not None
        return CidReused(message.cid)
    if kind == 3:  # retention deleted the original: its id and ts, with the repeat's text
        return dataclasses.replace(message, id=int(reply[1]), ts=int(reply[2])), False
    fields = reply[2]
    return from_entry(message.conversation, stream_id(int(reply[1])),
                       dict(zip(fields[::2], fields[1::2], strict=True))), False
