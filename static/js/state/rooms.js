// Verbs on rooms as places with owners (docs/protocol.md, "Rooms: owners, privacy and
// moderation"): each room's settings and the roles we know of, the rooms' panels (directory,
// new room, settings, invitation, members), invitations, and rooms we were sent out of.
import { addNotice } from './messages.js';
import { removeRoom } from './page.js';
import { roomNamed, state } from './store.js';

const PRIVILEGED = ['owner', 'moderator'];

function infoOf(name) {
  if (!state.roomInfo[name]) {
    state.roomInfo[name] = { topic: '', visibility: 'public', role: null, roles: {} };
  }
  return state.roomInfo[name];
}

// ---- reading --------------------------------------------------------------------------------

// Whether we may change the room's settings and act on its members: its owners and
// moderators, and the server's admins. The server checks it again, and the rank of whom.
export function canModerate(name) {
  if (state.auth.account && state.auth.account.role === 'admin') return true;
  const info = state.roomInfo[name];
  return Boolean(info && PRIVILEGED.includes(info.role));
}

// Only owners and admins give roles.
export function canGiveRoles(name) {
  if (state.auth.account && state.auth.account.role === 'admin') return true;
  const info = state.roomInfo[name];
  return Boolean(info && info.role === 'owner');
}

// Anyone signed in invites to a public room they are in; a private one takes a moderator.
export function canInvite(name) {
  if (!state.auth.account) return false;
  const info = state.roomInfo[name];
  return !info || info.visibility !== 'private' || canModerate(name);
}

export function roleOf(room, username) {
  const info = state.roomInfo[room];
  if (!info) return null;
  if (state.me && username === state.me.username && info.role) return info.role;
  return info.roles[username] || null;
}

// ---- settings and roles ----------------------------------------------------------------------

// A room's settings: from a `welcome` (with our role), a `room` reply or a change announced.
// A reply's `staff` (the owners and moderators) replaces the roles we knew of.
export function roomSettings(name, { topic, visibility, role, staff }) {
  const info = infoOf(name);
  if (Array.isArray(staff)) {
    info.roles = {};
    for (const s of staff) {
      if (s && typeof s.username === 'string' && typeof s.role === 'string') {
        info.roles[s.username] = s.role;
      }
    }
  }
  if (typeof topic === 'string') info.topic = topic;
  if (visibility === 'public' || visibility === 'private') info.visibility = visibility;
  if (typeof role === 'string' || role === null) info.role = role;
}

// Our role in each room the account is a member of (a welcome's `member_of`).
export function memberOf(list) {
  for (const m of list) roomSettings(m.room, { role: m.role });
}

export function roleChanged(room, username, role) {
  const info = infoOf(room);
  info.roles[username] = role;
  if (state.me && username === state.me.username) info.role = role;
}

// ---- the panels ------------------------------------------------------------------------------

export function openPanel(kind) {
  state.roomPanel = { kind, error: '', status: '', busy: false };
}

export function closePanel() {
  state.roomPanel = { kind: '', error: '', status: '', busy: false };
}

export function panelBusy() {
  state.roomPanel.busy = true;
  state.roomPanel.error = '';
  state.roomPanel.status = '';
}

// What a room frame of ours came to: an error or a done thing, shown in the open panel.
export function panelOutcome(error, status) {
  state.roomPanel.busy = false;
  state.roomPanel.error = error || '';
  state.roomPanel.status = status || '';
}

// ---- the directory ---------------------------------------------------------------------------

export function directoryAsked(prefix, more) {
  if (!more) state.directory.list = [];
  state.directory.prefix = prefix;
  state.directory.loading = true;
}

export function directoryListed(f) {
  const d = state.directory;
  if (typeof f.prefix === 'string' && f.prefix !== d.prefix) return; // an older search's
  d.loading = false;
  d.more = f.more === true;
  for (const r of Array.isArray(f.rooms) ? f.rooms : []) {
    if (!r || typeof r.room !== 'string' || d.list.some((x) => x.room === r.room)) continue;
    d.list.push({
      room: r.room,
      topic: typeof r.topic === 'string' ? r.topic : '',
      members: Number.isInteger(r.members) ? r.members : 0,
    });
  }
}

export function directoryRefused() {
  state.directory.loading = false;
}

// ---- invitations and leaving -----------------------------------------------------------------

export function invited(room, by) {
  if (state.roomOrder.includes(room)) return; // in it already (a public room, another tab)
  if (!state.invites.some((i) => i.room === room)) state.invites.push({ room, by });
}

export function inviteTaken(room) {
  state.invites = state.invites.filter((i) => i.room !== room);
}

// We are out of a room by someone else's doing (kicked, banned, left on another device): it
// goes from the sidebar, and the page says why.
export function roomGone(name, why) {
  if (state.roomOrder.includes(name)) removeRoom(name);
  state.roomsNotice = why;
}

// A line in a room's conversation (a change of its settings, a mute, a new role).
export function noticeIn(room, text) {
  const conv = roomNamed(room);
  if (conv) addNotice(conv, text, 'info');
}

export function setRoomsNotice(text) {
  state.roomsNotice = text;
}

// A moderator removed a message: it is hidden.
export function messageRemoved(room, id) {
  const conv = roomNamed(room);
  if (!conv || !Number.isInteger(id)) return;
  const at = conv.items.findIndex(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id === id,
  );
  // Its id stays in byId: a replay of it (a gap fill) is then dropped as a duplicate.
  if (at >= 0) conv.items.splice(at, 1);
}
