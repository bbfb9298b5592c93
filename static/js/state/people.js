// Verbs on people and on what the account has read (docs/protocol.md, "Read state" and
// "Presence"): the server's read marks and unread counts, the read marks of this account's other
// devices, who is online, away or offline (and since when), and who is typing to us.
import { dmKey } from '../protocol.js';
import { currentConversation, ensureDm, isMe, own, roomNamed, session, state } from './store.js';

// ---- read state --------------------------------------------------------------------------------

function conversationOf(f, create) {
  if (typeof f.room === 'string') return roomNamed(f.room);
  if (typeof f.with !== 'string' || !f.with) return null;
  return create ? ensureDm(f.with) : state.dms[dmKey(f.with)] || null;
}

function count(n) {
  return Number.isInteger(n) && n > 0 ? n : 0;
}

// Whether the conversation is the one the reader has in front of them: not while the page
// is about to show another (a reload's room from the URL, whose welcome has not come yet).
export function shownNow(conv) {
  const waiting = session.switchTo !== null && session.switchTo !== undefined;
  return conv === currentConversation() && !(waiting && conv.name !== session.switchTo);
}

// One entry of an `unread` frame: the server's count replaces ours. Returns the conversation
// (a direct conversation is made if the sidebar did not list it yet), or null.
export function unreadEntry(entry) {
  const conv = conversationOf(entry, true);
  if (!conv) return null;
  conv.readMark = Math.max(conv.readMark, count(entry.read));
  conv.readKnown = true;
  const unread = count(entry.count);
  if (shownNow(conv)) {
    // Being looked at: the line goes where the reader stopped; the count is read when seen.
    if (unread && conv.dividerAfter === null) conv.dividerAfter = conv.readMark;
    return conv;
  }
  conv.unread = unread;
  conv.unreadMore = entry.more === true;
  conv.mentions = Math.min(count(entry.mentions), unread);
  conv.mentioned = conv.mentions > 0;
  conv.firstUnreadKey = null; // the line is drawn from the mark (see show())
  return conv;
}

// The account's read mark moved (here or on another device): what is before it is read.
export function readMarked(f) {
  const conv = conversationOf(f, false);
  if (!conv || !Number.isInteger(f.id)) return;
  conv.readMark = Math.max(conv.readMark, f.id);
  conv.readKnown = true;
  if (conv === currentConversation()) return;
  const after = conv.items.filter(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id > conv.readMark && !i.mine,
  );
  const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
  // Only what is loaded can be recounted: a mark before the oldest message loaded keeps ours.
  if (conv.readMark < conv.lastId && !(oldest && oldest.id <= conv.readMark + 1)) return;
  conv.unread = after.length;
  conv.unreadMore = false;
  conv.mentions = after.filter((i) => i.mentionsMe).length;
  conv.mentioned = conv.mentions > 0;
  if (!conv.unread) conv.firstUnreadKey = null;
}

// The `read` frame for the conversation shown, if it has messages past what was last said to
// be read; or null. Guests keep no read state; a room only while this socket is in it.
export function readFrame(target) {
  const conv = target ? own(target) : null;
  if (!conv || !shownNow(conv) || !state.me || state.me.guest || !session.identified) return null;
  const id = conv.lastId;
  if (!(id > conv.readMark) || id <= conv.readSent) return null;
  if (conv.kind === 'room' && !session.liveRooms.has(conv.name)) return null;
  conv.readSent = id;
  return conv.kind === 'room'
    ? { type: 'read', room: conv.name, id }
    : { type: 'read', with: conv.name, id };
}

// A new socket: marks sent on the old one may not have arrived, so they may be sent again.
export function readUnconfirmed() {
  for (const conv of [...Object.values(state.rooms), ...Object.values(state.dms)]) {
    conv.readSent = conv.readMark;
  }
}

// The list is scrolled to its end (or not): what arrives is seen only then.
export function setAtBottom(atBottom) {
  session.atBottom = atBottom;
}

// ---- presence ----------------------------------------------------------------------------------

function setPerson(username, presence, lastSeen) {
  if (typeof username !== 'string' || !['online', 'away', 'offline'].includes(presence)) return;
  const known = state.people[dmKey(username)];
  state.people[dmKey(username)] = {
    username,
    state: presence,
    lastSeen: Number.isFinite(lastSeen) ? lastSeen : known ? known.lastSeen : 0,
  };
}

// The answer to a `status` frame: each user's state. Returns the names the server knew.
export function statusAnswered(users) {
  const found = [];
  for (const u of Array.isArray(users) ? users : []) {
    if (!u || typeof u.username !== 'string') continue;
    setPerson(u.username, u.state, u.last_seen);
    found.push(u.username);
  }
  return found;
}

// A room's notice that a member became away or is back.
export function statusChanged(f) {
  if (!isMe(f.username)) setPerson(f.username, f.state);
}

// Someone joined a room with us: they are online now.
export function seenOnline(username) {
  if (typeof username === 'string' && !isMe(username)) setPerson(username, 'online');
}

// ---- typing in direct conversations ------------------------------------------------------------

export function dmTypingUntil(username, until) {
  const conv = state.dms[dmKey(username)];
  if (conv) conv.typing[username] = until;
}

export function dmTypingEnded(username, until) {
  const conv = state.dms[dmKey(username)];
  if (conv && conv.typing[username] === until) delete conv.typing[username];
}
