// "Is typing" notices: at most one per interval per room, and none for a message already sent.
import { session, state } from './state/index.js';

// A little over the server's default typing-interval (1 s): notices sent faster are dropped.
const TYPING_SEND_EVERY_MS = 1200;
const lastTypingSent = new Map(); // room → ms
const typingLater = new Map(); // room → timer of the notice held back by the interval

// The composer's text changed. Keystrokes within the interval are not lost: one notice goes
// out when it ends (others clear "is typing" when our message arrives, so typing right after
// sending must still be announced).
export function typed(room) {
  const cur = state.current;
  room = room || (cur.kind === 'room' ? cur.id : null);
  if (!room || !session.liveRooms.has(room) || typingLater.has(room)) return;
  const wait = (lastTypingSent.get(room) || 0) + TYPING_SEND_EVERY_MS - Date.now();
  if (wait > 0) {
    const timer = setTimeout(() => {
      typingLater.delete(room);
      typed(room);
    }, wait);
    typingLater.set(room, timer);
    return;
  }
  lastTypingSent.set(room, Date.now());
  session.conn.send({ type: 'typing', room });
}

// A message was sent: a held-back notice would now claim typing that has ended.
export function stoppedTyping(room) {
  clearTimeout(typingLater.get(room));
  typingLater.delete(room);
}
