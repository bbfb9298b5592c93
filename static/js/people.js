// People: the `read` frames that say what the account has seen, `active` when the person uses
// the page (the server decides when they are away), and `status`, asked for the people shown
// and for a name typed into "New message" (docs/protocol.md, "Presence", "Read state").
import * as change from './state/index.js';
import { currentConversation, isMe, session, state } from './state/index.js';

// `active` at most this often: the server's away-after is minutes by default, and a few
// seconds keep a tiny test setting honest while costing one small frame per interval.
const ACTIVE_EVERY_MS = 5000;
const STATUS_MAX = 100; // names in one `status` frame (the server's limit)

let activeSentAt = 0;
let activeLater = 0; // the timer of the `active` held back by the interval
// The `status` frames on their way, oldest first (answers come in order): each with the
// callback of a name looked up for "New message", or null.
let asked = [];

// The conversation shown is seen (the tab in front, its list scrolled to the end): its newest
// message is read, on every device of the account.
export function readIfSeen() {
  if (document.hidden || !session.atBottom) return;
  const frame = change.readFrame(currentConversation());
  if (frame) session.conn.send(frame);
}

// A `join` went out: the server counts it as activity, so an `active` now would say nothing.
export function joinedNow() {
  activeSentAt = Date.now();
}

// A key, a click, the tab coming to the front. Activity within the interval is not lost: it
// is told when the interval ends (it may be what brings the person back from away).
export function userActive() {
  if (!session.identified || activeLater) return;
  const wait = activeSentAt + ACTIVE_EVERY_MS - Date.now();
  if (wait > 0) {
    activeLater = setTimeout(() => {
      activeLater = 0;
      userActive();
    }, wait);
    return;
  }
  activeSentAt = Date.now();
  session.conn.send({ type: 'active' });
}

function askStatus(names, lookup) {
  if (!session.identified || !names.length) return false;
  asked.push(lookup || null);
  session.conn.send({ type: 'status', users: names.slice(0, STATUS_MAX) });
  return true;
}

// Who of a room's listed members (the first hundred) is online or away.
export function askStatusOf(room) {
  const conv = typeof room === 'string' ? state.rooms[room] : null;
  if (!conv) return;
  askStatus(conv.users.map((u) => u.username).filter((name) => !isMe(name)));
}

// Whether the other party of a direct conversation is online, away, or since when offline.
export function askStatusOfPeer(name) {
  if (!isMe(name)) askStatus([name]);
}

// Whether `name` is someone (an account, or a user online): resolves with the name as its
// holder spells it, or null.
export function findPerson(name) {
  return new Promise((resolve) => {
    const lookup = (found) => resolve(found ? found.find((n) => n.toLocaleLowerCase() ===
      name.toLocaleLowerCase()) || found[0] || null : null);
    if (!askStatus([name], lookup)) resolve(null);
  });
}

export function statusReply(users) {
  const found = change.statusAnswered(users);
  const lookup = asked.shift();
  if (lookup) lookup(found);
}

export function statusRefused() {
  const lookup = asked.shift();
  if (lookup) lookup(null);
}

// The socket closed: the answers still owed will not come.
export function socketGone() {
  change.readUnconfirmed();
  const owed = asked;
  asked = [];
  for (const lookup of owed) if (lookup) lookup(null);
  activeSentAt = 0;
  clearTimeout(activeLater);
  activeLater = 0;
}

// Names the page knows, for "New message": members of the rooms it is in, its direct
// conversations, and whoever `status` told it of.
export function knownNames() {
  const names = new Map();
  const add = (name) => {
    if (typeof name === 'string' && !isMe(name)) names.set(name.toLocaleLowerCase(), name);
  };
  for (const conv of Object.values(state.dms)) add(conv.name);
  for (const conv of Object.values(state.rooms)) for (const u of conv.users) add(u.username);
  for (const person of Object.values(state.people)) add(person.username);
  return [...names.values()].sort((a, b) => a.localeCompare(b));
}
