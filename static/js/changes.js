// What the page asks of the server about messages it holds: edit or delete our own, delete
// as a room's moderator (views/rooms.js's "Remove"), react (docs/protocol.md).
import { draftKey } from './protocol.js';
import * as change from './state/index.js';
import { session, state } from './state/index.js';

function send(frame) {
  if (session.conn && session.identified) session.conn.send(frame);
}

// Where a frame about a message of `conv` goes: its room, or `with` the other party.
function where(conv) {
  return conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
}

export function deleteMessage(conv, id) {
  send({ type: 'delete', ...where(conv), id });
}

export function toggleReaction(conv, item, emoji) {
  const mine = state.me !== null && item.reactions.some(
    (r) => r.emoji === emoji && r.users.includes(state.me.username),
  );
  send({ type: 'react', ...where(conv), id: item.id, emoji, remove: mine });
}

// The composer takes the message's text; its next submit sends an `edit`.
export function startEditing(conv, item) {
  change.setEditing(conv, item.id);
  change.setDraft(conv, item.text);
}

// The last message of ours the conversation shows, for ↑ in an empty composer.
export function lastOwn(conv) {
  for (let i = conv.items.length - 1; i >= 0; i--) {
    const item = conv.items[i];
    if (item.type === 'message' && item.mine && item.epoch === conv.epoch) return item;
  }
  return null;
}

// Submit while editing: the new text goes as an `edit`; the composer is empty again.
export function finishEditing(conv, text) {
  const id = state.editing[draftKey(conv)];
  if (!Number.isInteger(id)) return false;
  if (text.trim()) send({ type: 'edit', ...where(conv), id, text });
  change.setEditing(conv, null);
  change.setDraft(conv, '');
  return true;
}

export function cancelEditing(conv) {
  change.setEditing(conv, null);
  change.setDraft(conv, '');
}
