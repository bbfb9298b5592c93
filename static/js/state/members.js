// Verbs on who is in a room: its count and members (a page at a time), joins and leaves
// folded into one notice line, and who is typing.
import { addNotice } from './messages.js';
import { isMe, roomNamed, session } from './store.js';

const NAMES_SHOWN = 3; // in one folded line: "a, b, c and 4 others joined"

function nameList(names) {
  if (names.length <= NAMES_SHOWN) {
    return names.length > 1 ? names.slice(0, -1).join(', ') + ' and ' + names.at(-1) : names[0];
  }
  const others = names.length - NAMES_SHOWN + 1;
  return names.slice(0, NAMES_SHOWN - 1).join(', ') + ' and ' + others + ' others';
}

// Joins and leaves that follow one another fold into one line: each name under its latest
// change ("bob left" once bob came and went), so churn adds one line between two messages.
function presenceNotice(conv, kind, name) {
  let line = conv.items.at(-1);
  if (!line || !line.churn) line = null;
  if (line && kind === 'join' && line.churn.left.includes(name)) {
    // Back before anything else was said (a reconnect): as if they had never left.
    line.churn.left.splice(line.churn.left.indexOf(name), 1);
    if (!line.churn.joined.length && !line.churn.left.length) {
      conv.items.splice(conv.items.indexOf(line), 1);
    } else {
      line.text = churnText(conv, line.churn);
    }
    return;
  }
  const churn = line ? line.churn : { joined: [], left: [] };
  const same = kind === 'join' ? churn.joined : churn.left;
  const opposite = kind === 'join' ? churn.left : churn.joined;
  if (opposite.includes(name)) opposite.splice(opposite.indexOf(name), 1);
  if (!same.includes(name)) same.push(name);
  if (!line) line = addNotice(conv, '', 'info', { churn });
  line.text = churnText(conv, churn);
  line.ts = Date.now();
}

function churnText(conv, churn) {
  const parts = [];
  if (churn.joined.length) parts.push(nameList(churn.joined) + ' joined');
  if (churn.left.length) parts.push(nameList(churn.left) + ' left');
  return parts.join('; ') + ' #' + conv.name;
}

// How long members listed before this page reconnected count as returning, not joining: the
// others reconnect within the page's backoff (at most a minute) after a restart or a deploy.
const RETURNING_MS = 120_000;

function mergeMembers(conv, users) {
  const known = new Set(conv.users.map((u) => u.username));
  for (const u of users) {
    if (u && typeof u.username === 'string' && !known.has(u.username)) {
      known.add(u.username);
      conv.users.push({
        username: u.username,
        avatar: u.avatar,
        guest: u.guest === true,
        bot: u.bot === true, // a bot account (an API token's connection)
      });
    }
  }
  conv.users.sort((a, b) => a.username.localeCompare(b.username));
}

// A `presence` or `members` page: its count, and where the next page starts.
function memberPage(conv, f, users) {
  conv.count = Number.isInteger(f.count) ? f.count : conv.users.length;
  conv.membersMore = f.more === true;
  const last = users.length ? users[users.length - 1] : null;
  if (last && typeof last.username === 'string') conv.membersAfter = last.username;
  conv.membersLoading = false;
}

// The room's count and first members (a big room's list is completed with `members`).
export function presence(f) {
  const conv = roomNamed(f.room);
  if (!conv || !Array.isArray(f.users)) return;
  if (conv.users.length) {
    // A new list (this page reconnected): who was listed before is returning, not joining.
    conv.returning = new Set(conv.users.map((u) => u.username));
    conv.returningUntil = Date.now() + RETURNING_MS;
  }
  conv.users = [];
  mergeMembers(conv, f.users);
  conv.membersAfter = '';
  memberPage(conv, f, f.users);
}

export function members(f) {
  const conv = roomNamed(f.room);
  if (!conv || !Array.isArray(f.users)) return;
  mergeMembers(conv, f.users);
  memberPage(conv, f, f.users);
}

export function joined(f) {
  const conv = roomNamed(f.room);
  if (!conv || typeof f.username !== 'string') return;
  const known = conv.users.some((u) => u.username === f.username);
  if (!known) mergeMembers(conv, [f]);
  if (Number.isInteger(f.count)) conv.count = f.count;
  else if (!known) conv.count += 1;
  const returning = conv.returning && conv.returning.has(f.username) &&
    Date.now() < conv.returningUntil;
  if (conv.returning) conv.returning.delete(f.username);
  // A member this page already lists, or listed before it reconnected, is no news.
  if (!isMe(f.username) && !known && !returning) presenceNotice(conv, 'join', f.username);
}

export function left(f) {
  const conv = roomNamed(f.room);
  if (!conv || typeof f.username !== 'string') return;
  const known = conv.users.some((u) => u.username === f.username);
  conv.users = conv.users.filter((u) => u.username !== f.username);
  if (Number.isInteger(f.count)) conv.count = f.count;
  else if (known) conv.count = Math.max(0, conv.count - 1);
  delete conv.typing[f.username];
  if (conv.returning) conv.returning.delete(f.username);
  if (!isMe(f.username)) presenceNotice(conv, 'leave', f.username);
}

// The `members` frame for a room's next page of members, marked as asked for; or null.
export function membersPage(room) {
  const conv = roomNamed(room);
  if (!conv || conv.membersLoading || !conv.membersMore || !session.liveRooms.has(conv.name))
    return null;
  const frame = { type: 'members', room: conv.name };
  if (conv.membersAfter) frame.after = conv.membersAfter;
  conv.membersLoading = true;
  return frame;
}

export function membersRefused(room) {
  const conv = roomNamed(room);
  if (conv) conv.membersLoading = false; // the button stays: the user may try again
}

// "x is typing…" shows until `until` (ms), unless a later notice moved it on.
export function typingUntil(room, username, until) {
  const conv = roomNamed(room);
  if (conv) conv.typing[username] = until;
}

export function typingEnded(room, username, until) {
  const conv = roomNamed(room);
  if (conv && conv.typing[username] === until) delete conv.typing[username];
}
