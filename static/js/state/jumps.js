// Verbs on jumps to a message in its conversation: a reply's original, a search result, a
// link (docs/search.md, "The page"). The conversation is shown, older pages are asked for one
// at a time until the message is there (views/conversation.js then scrolls to it and flashes
// it), and a message that is not to be had says so.
import { HISTORY_MAX, ROOM_NAME, dmKey } from '../protocol.js';
import { olderPage } from './messages.js';
import { own, session, state } from './store.js';

export const NOT_AVAILABLE =
  'That message is not available: it was deleted, or it is in a conversation you cannot see.';

// Shows the message `id` of a conversation the page holds, loading older pages until it is
// there; returns the first `history` frame to send, or null.
export function jumpTo(target, id) {
  const conv = own(target);
  if (!conv || !Number.isInteger(id)) return null;
  state.jumpNotice = '';
  conv.jump = id;
  return jumpStep(conv);
}

// The next page to ask for to reach the jump's message, or null (there, on its way, or not
// to be had: then the notice says so).
export function jumpStep(target) {
  const conv = own(target);
  if (!conv || conv.jump === null) return null;
  const there = conv.items.some(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id === conv.jump,
  );
  if (there) return null;
  const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
  if (oldest && oldest.id < conv.jump) return jumpFailed(conv); // in the range shown: gone
  const frame = olderPage(conv);
  // A far jump asks for the biggest pages the server gives, to get there in fewer steps.
  if (frame && frame.before) frame.limit = HISTORY_MAX;
  if (frame === null && (conv.historyDone || !state.historySupported)) return jumpFailed(conv);
  return frame; // null while a page is on its way or the room's join is: its answer steps
}

// The jump's message is not to be had (deleted, or never in this conversation).
export function jumpFailed(target) {
  const conv = own(target);
  if (conv) conv.jump = null;
  state.jumpNotice = NOT_AVAILABLE;
  return null;
}

export function jumpDone(target) {
  const conv = own(target);
  if (conv) conv.jump = null;
}

export function setJumpNotice(text) {
  state.jumpNotice = text;
}

// A message to jump to once its conversation is joined (or the page signed in), or null.
export function jumpLater(where) {
  session.jumpLater = where;
}

// ---- links ------------------------------------------------------------------------------------

// A message's permalink: #/room/<room>/<id>, or #/dm/<one>/<other>/<id> for a direct message
// (both people: each of the two opens it as their own conversation with the other).
export function linkTo(conv, id) {
  const base = location.origin + location.pathname;
  if (conv.kind === 'room') return base + '#/room/' + encodeURIComponent(conv.name) + '/' + id;
  const me = state.me ? state.me.username : '';
  const names = [me, conv.name].map(encodeURIComponent).join('/');
  return base + '#/dm/' + names + '/' + id;
}

// What a permalink's #fragment names: {kind: 'room', name, id} or {kind: 'dm', names, id};
// null when it is not one.
export function linkFromHash(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch (_) {
    return null;
  }
  const id = Number(parts[parts.length - 1]);
  if (!Number.isSafeInteger(id) || id < 1) return null;
  if (parts[0] === 'room' && parts.length === 3) {
    const name = parts[1].toLowerCase();
    return ROOM_NAME.test(name) ? { kind: 'room', name, id } : null;
  }
  if (parts[0] === 'dm' && parts.length === 4 && parts[1] && parts[2]) {
    return { kind: 'dm', names: [parts[1], parts[2]], id };
  }
  return null;
}

// The other person of a direct message's link, for the signed-in reader; null when the link
// is between two others (the server would show nothing of it either).
export function peerOfLink(link) {
  if (!state.me) return null;
  const me = dmKey(state.me.username);
  const [a, b] = link.names;
  if (dmKey(a) === me && dmKey(b) !== me) return b;
  if (dmKey(b) === me && dmKey(a) !== me) return a;
  return null;
}

// The link last copied, for the view's line (`copied` false: a field to copy it from); null
// hides it. `onlyIf`: hide it only if it still shows that link.
export function linkShown(url, copied, onlyIf) {
  if (onlyIf !== undefined && (!state.copiedLink || state.copiedLink.url !== onlyIf)) return;
  state.copiedLink = url === null ? null : { url, copied };
}
