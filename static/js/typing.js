// "Is typing" notices: at most one per interval per room (or person, in a direct
// conversation), and none for a message already sent.
import { session, state } from './state/index.js';

// A little over the server's default typing-interval (1 s): notices sent faster are dropped.
const TYPING_SEND_EVERY_MS = 1200;
const lastTypingSent = new Map(); // room, or '@' + person → ms
const typingLater = new Map(); // the same → timer of the notice held back by the interval

// The `typing` frame for the conversation shown (or `room`), and the key its interval is kept
// under; null when there is nobody to tell.
function target(room) {
  const cur = state.current;
  if (room || cur.kind === 'room') {
    room = room || cur.id;
    return session.liveRooms.has(room) ? { key: room, frame: { type: 'typing', room } } : null;
  }
  const conv = state.dms[cur.id];
  if (!conv || !session.identified) return null;
  return { key: '@' + cur.id, frame: { type: 'typing', with: conv.name } };
}

// The composer's text changed. Keystrokes within the interval are not lost: one notice goes
// out when it ends (others clear "is typing" when our message arrives, so typing right after
// sending must still be announced).
export function typed(room) {
  const to = target(room);
  if (to) announce(to.key, to.frame);
}

function announce(key, frame) {
  if (typingLater.has(key)) return;
  const wait = (lastTypingSent.get(key) || 0) + TYPING_SEND_EVERY_MS - Date.now();
  if (wait > 0) {
    const timer = setTimeout(() => {
      typingLater.delete(key);
      announce(key, frame);
    }, wait);
    typingLater.set(key, timer);
    return;
  }
  lastTypingSent.set(key, Date.now());
  session.conn.send(frame);
}

// A message was sent (to a room, or '@' + the person's lower-cased name): a held-back notice
// would now claim typing that has ended.
export function stoppedTyping(key) {
  clearTimeout(typingLater.get(key));
  typingLater.delete(key);
}
