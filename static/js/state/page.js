// Verbs on the page as a whole: the socket's life, who the socket joins as, which
// conversation is shown, the rooms and direct conversations in the sidebar, drafts.
import { DEFAULT_ROOM, dmKey, draftKey, roomFromHash } from '../protocol.js';
import {
  currentConversation,
  ensureDm,
  ensureRoom,
  own,
  roomNamed,
  session,
  state,
} from './store.js';

// ---- the socket ----------------------------------------------------------------------------

export function setConnection(conn) {
  session.conn = conn;
}

function forgetSocket() {
  session.identified = false;
  session.liveRooms.clear();
  session.requested.clear();
}

export function socketOpened() {
  session.serial += 1;
  forgetSocket();
  state.status = 'open';
}

export function socketClosed(delayMs) {
  forgetSocket();
  state.status = 'waiting';
  state.retryAt = Date.now() + delayMs;
  state.now = Date.now();
  for (const conv of Object.values(state.rooms)) {
    conv.typing = {};
    conv.historyLoading = false;
    conv.gapLoading = false;
    for (const item of conv.items) if (item.type === 'gap') item.loading = false;
  }
  for (const conv of Object.values(state.dms)) conv.historyLoading = false;
}

// The banner's countdown moves on while the page waits to reconnect.
// So does a throttled sign-in's "try again in N s".
export function tick() {
  if (state.status === 'waiting' || state.form.retryUntil) state.now = Date.now();
}

// A join for `room` goes out: returns the `since` it asks for (only what we missed on a
// rejoin; the server replays the messages after it), or undefined.
export function joinSent(room) {
  const conv = roomNamed(room);
  let since;
  if (conv && state.roomOrder.includes(room) && conv.lastId > 0) since = conv.lastId;
  if (conv) conv.replayIsNews = since !== undefined;
  if (conv) conv.resumeFrom = since || 0;
  session.requested.add(room);
  return since;
}

// ---- who we are ------------------------------------------------------------------------------

// The guest form was sent: the next identifying join says who we are.
export function identifying(username, email) {
  state.form.error = null;
  state.form.busy = true;
  session.identity = { username, email, token: null, account: false };
}

// A welcome: who the server says we are, its limits and the rooms this socket is in.
// Returns whether it was the socket's first.
export function welcomed({ username, avatar, token, guest, textChars, rooms }) {
  const first = !session.identified;
  session.identified = true;
  session.identity = session.identity || { username, email: '', token: null, account: !guest };
  session.identity.username = username;
  session.identity.token = token;
  state.me = { username, avatar, guest };
  state.limits.textChars = textChars;
  state.form.busy = false;
  state.form.error = null;
  for (const name of rooms) {
    session.liveRooms.add(name);
    session.requested.delete(name);
    ensureRoom(name);
    if (!state.roomOrder.includes(name)) state.roomOrder.push(name);
  }
  return first;
}

// After a welcome: the room the user asked for once it is joined, else a room we are in.
export function showAfterWelcome(first) {
  const { switchTo } = session;
  if (switchTo && session.liveRooms.has(switchTo)) {
    show('room', switchTo);
    session.switchTo = null;
  } else if (
    first &&
    state.current.kind === 'room' &&
    !state.roomOrder.includes(state.current.id)
  ) {
    show('room', state.roomOrder[0]);
  }
}

// A token the server no longer knows: the next identifying join goes without it.
export function forgetToken() {
  session.identity.token = null;
}

// The identifying join was refused: back to the form (the guest form unless `mode` says
// otherwise), with the reason beside its field.
export function backToForm(field, reason, mode) {
  const { identity } = session;
  if (identity && !state.form.username) state.form.username = identity.username;
  session.identity = null;
  state.me = null;
  state.form.busy = false;
  state.form.mode = mode || (identity && identity.account ? 'signin' : 'guest');
  state.form.error = { field, text: reason };
}

export function setNotifications(permission) {
  state.notifications = permission;
}

// ---- what is shown ---------------------------------------------------------------------------

export function show(kind, id) {
  const left = currentConversation();
  if (left) left.dividerKey = null; // what was new there has been seen
  if (left) left.dividerAfter = null;
  state.current = { kind, id };
  const conv = currentConversation();
  if (conv) {
    conv.dividerKey = conv.unread > 0 ? conv.firstUnreadKey : null;
    // An account's line goes after its read mark, wherever it was read (state/people.js).
    conv.dividerAfter = conv.unread > 0 && conv.readKnown ? conv.readMark : null;
    conv.mentions = 0;
    conv.firstUnreadKey = null;
    conv.unread = 0;
    conv.mentioned = false;
  }
  state.sidebarOpen = false;
  // The room in the URL, so a link (or a reload) opens it. replaceState: switching rooms
  // should not fill the back button's history.
  if (kind === 'room' && roomFromHash() !== id) history.replaceState(null, '', '#' + id);
}

export function setSidebarOpen(open) {
  state.sidebarOpen = open;
}

// The tab is seen again: what arrived meanwhile in the shown conversation has been read.
export function tabShown() {
  state.hiddenUnread = 0;
  const conv = currentConversation();
  if (conv) {
    conv.unread = 0;
    conv.firstUnreadKey = null;
    conv.mentioned = false;
    conv.mentions = 0;
  }
}

export function setDraft(conv, text) {
  state.drafts[draftKey(conv)] = text;
}

export function clearSendError(conv) {
  const mine = own(conv);
  if (mine) mine.sendError = '';
}

// ---- rooms and direct conversations ------------------------------------------------------------

export { ensureDm, ensureRoom };

// A room to show as soon as its welcome arrives.
export function switchToLater(name) {
  session.switchTo = name;
}

export function setRoomError(text) {
  state.roomError = text;
}

// A further room was refused: the sidebar's room form shows why.
export function roomRefused(room, reason) {
  if (typeof room === 'string') session.requested.delete(room.toLowerCase());
  session.switchTo = null;
  state.roomError = reason;
}

export function removeRoom(name) {
  session.liveRooms.delete(name);
  state.roomOrder.splice(state.roomOrder.indexOf(name), 1);
  dropOutbox('room', name);
  const wasCurrent = state.current.kind === 'room' && state.current.id === name;
  delete state.rooms[name];
  if (wasCurrent) show('room', state.roomOrder[0]);
}

export function closeDm(key) {
  if (!state.dms[key]) return;
  dropOutbox('dm', key);
  state.dmOrder.splice(state.dmOrder.indexOf(key), 1);
  const wasCurrent = state.current.kind === 'dm' && state.current.id === key;
  delete state.dms[key];
  if (wasCurrent) show('room', state.roomOrder[0] || DEFAULT_ROOM);
}

// Drops what was waiting for a room we left or a conversation we closed.
function dropOutbox(kind, key) {
  state.outbox = state.outbox.filter(
    (e) => !(e.kind === kind && (kind === 'room' ? e.target : dmKey(e.target)) === key),
  );
}
