// Edits, deletes and reactions of messages the page holds (docs/protocol.md, "Edits, deletes
// and the change sequence"), and which of our messages the composer is editing.
import { withoutFileLines } from '../files.js';
import { mentionsMe } from '../markdown.js';
import { dmKey, draftKey } from '../protocol.js';
import { own, roomNamed, state } from './store.js';

// The conversation an `edited`, `reacted` or `deleted` event is about: a room, or the direct
// conversation with whichever of `from` and `to` is not us.
function convOf(f, me) {
  if (typeof f.room === 'string') return roomNamed(f.room);
  if (typeof f.from !== 'string' || typeof f.to !== 'string') return null;
  const peer = f.from.toLowerCase() === me ? f.to : f.from;
  return state.dms[dmKey(peer)] || null;
}

// The highest change number applied to a conversation (its mark): a rejoin asks for the
// changes after it (joining.js). `conv` is the one a history reply or change is about.
export function changeMarked(conv, change) {
  const mine = conv ? own(conv) : null;
  if (mine && Number.isInteger(change)) mine.changeMark = Math.max(mine.changeMark || 0, change);
}

export function changeMarkOf(room) {
  const conv = roomNamed(room);
  return conv && Number.isInteger(conv.changeMark) ? conv.changeMark : undefined;
}

// Apply one change; a message we do not hold is skipped (history brings it as it is now).
export function messageChanged(f) {
  if (state.me === null || !Number.isInteger(f.id)) return;
  const conv = convOf(f, state.me.username.toLowerCase());
  if (!conv) return;
  changeMarked(conv, f.change);
  // Through the list, not byId (kept raw: a change there would not redraw the message).
  const at = conv.items.findIndex(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id === f.id,
  );
  if (at < 0) return;
  const item = conv.items[at];
  if (f.type === 'deleted') {
    conv.items.splice(at, 1);
    if (state.editing[draftKey(conv)] === f.id) delete state.editing[draftKey(conv)];
    return; // its id stays in byId: a replay of it is dropped as a duplicate
  }
  if (f.type === 'edited' && typeof f.message === 'string') {
    // The server keeps the files' link lines at the end of an edited text: shown as files.
    item.text = withoutFileLines(f.message, item.files || []);
    item.mentionsMe = !item.mine && state.me !== null && mentionsMe(item.text, state.me.username);
    item.edited = Number.isFinite(f.edited) ? f.edited : Date.now();
  }
  if (Array.isArray(f.reactions)) item.reactions = f.reactions;
  else if (f.type === 'reacted') item.reactions = [];
}

// The composer of `conv` edits our message `id` (null: it sends new messages again).
export function setEditing(conv, id) {
  const mine = own(conv);
  if (!mine) return;
  if (id === null) delete state.editing[draftKey(mine)];
  else state.editing[draftKey(mine)] = id;
}
