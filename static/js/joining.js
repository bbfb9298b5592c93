// The `join` frames: the identifying one that opens each socket, and those for further rooms.
import { DEFAULT_ROOM } from './protocol.js';
import { changeMarkOf, joinSent, session, state } from './state/index.js';

export function joinFrame(room, identifying) {
  const frame = { type: 'join', room };
  const { identity } = session;
  if (identifying) {
    frame.username = identity.username;
    if (identity.email) frame.email = identity.email;
    if (identity.token) frame.token = identity.token;
  }
  // On a rejoin, ask only for what we missed; the server replays the messages after it.
  const since = joinSent(room);
  if (since !== undefined) frame.since = since;
  // And the edits, deletes and reactions after the last change number we applied.
  const mark = changeMarkOf(room);
  if (since !== undefined && mark !== undefined) frame.changes = mark;
  return frame;
}

// The first join on a socket identifies it. After a reconnect it carries the token, which
// makes it the same user even if the server has not yet noticed the old socket is gone.
export function sendIdentifyingJoin() {
  const cur = state.current;
  let room = DEFAULT_ROOM;
  if (cur.kind === 'room' && state.roomOrder.includes(cur.id)) room = cur.id;
  else if (state.roomOrder.length > 0) room = state.roomOrder[0];
  session.conn.send(joinFrame(room, true));
}
