// Rooms with owners (docs/protocol.md, "Rooms: owners, privacy and moderation"): what the
// views ask for (the directory, a new room, settings, invitations, moderation) and what the
// server's room frames change. frames.js hands these frames here.
import { joinFrame } from './joining.js';
import { ROOM_NAME } from './protocol.js';
import * as change from './state/index.js';
import { isMe, session, state } from './state/index.js';

export const DIRECTORY_PAGE = 50; // rooms per `rooms` page (the server's default)
// The frames whose errors belong to the rooms' panels, not to the conversation.
const ROOM_REQUESTS = ['room', 'rooms', 'invite', 'kick', 'ban', 'unban', 'mute', 'role', 'remove'];

let creating = ''; // the room our `room` frame is making: joined once the server says so

function send(frame) {
  if (session.conn && session.identified) session.conn.send(frame);
}

// ---- what the views ask for ------------------------------------------------------------------

export function searchRooms(prefix, more) {
  const p = prefix.trim().replace(/^#/, '').toLowerCase();
  const frame = { type: 'rooms', prefix: p, limit: DIRECTORY_PAGE };
  const list = state.directory.list;
  if (more && list.length) frame.after = list[list.length - 1].room;
  change.directoryAsked(p, more);
  send(frame);
}

export function openDirectory() {
  change.openPanel('directory');
  searchRooms('', false);
}

// The member list, with the roles the server names (a `room` reply's `staff`; accounts only:
// a guest may not send `room`).
export function openMembers(room) {
  change.openPanel('members');
  if (state.auth.account) send({ type: 'room', name: room });
}

export function createRoom(raw, topic, visibility) {
  const name = raw.trim().replace(/^#/, '').toLowerCase();
  if (!ROOM_NAME.test(name)) {
    change.panelOutcome('Room names are 1–32 characters: a–z, 0–9, "-", "_" and ".".');
    return;
  }
  creating = name;
  change.panelBusy();
  const frame = { type: 'room', name, visibility };
  if (topic.trim()) frame.topic = topic.trim();
  send(frame);
}

export function saveSettings(room, topic, visibility) {
  change.panelBusy();
  send({ type: 'room', name: room, topic, visibility });
}

export function invite(room, user) {
  const name = user.trim().replace(/^@/, '');
  if (!name) return change.panelOutcome('Whom to invite? Type their username.');
  change.panelBusy();
  send({ type: 'invite', room, user: name });
}

// kick, ban, mute, unban, role: `extra` holds minutes or role.
export function moderate(action, room, user, extra) {
  change.panelBusy();
  send(Object.assign({ type: action, room, user }, extra));
}

export function removeMessage(room, id) {
  send({ type: 'remove', room, id });
}

// An invitation taken up: the room is joined and shown.
export function acceptInvite(room) {
  change.inviteTaken(room);
  if (state.roomOrder.includes(room)) return change.show('room', room);
  change.switchToLater(room);
  if (session.identified && !session.requested.has(room)) session.conn.send(joinFrame(room, false));
}

export const { closePanel, openPanel, inviteTaken, setRoomsNotice } = change;

// ---- what the server says --------------------------------------------------------------------

// A welcome: the joined room's settings, and the account's rooms on any device, which this
// page joins too (a reload, a second device, a room joined elsewhere).
export function welcomeRooms(f) {
  const r = f.room;
  if (r && typeof r === 'object' && typeof r.name === 'string') change.roomSettings(r.name, r);
  if (!Array.isArray(f.member_of)) return;
  const list = f.member_of.filter((m) => m && typeof m.room === 'string');
  change.memberOf(list);
  for (const m of list) {
    const name = m.room;
    if (state.roomOrder.includes(name) || session.requested.has(name)) continue;
    if (session.liveRooms.has(name)) continue;
    session.conn.send(joinFrame(name, false));
  }
}

const DONE = {
  invite: (f) => f.user + ' was invited to #' + f.room + '.',
  kick: (f) => f.user + ' was removed from #' + f.room + '.',
  ban: (f) => f.user + ' was banned from #' + f.room + until(f) + '.',
  unban: (f) => f.user + ' may join #' + f.room + ' again.',
  mute: (f) => f.user + ' is muted in #' + f.room + until(f) + '.',
  role: (f) => f.user + ' is now ' + f.role + ' of #' + f.room + '.',
  remove: (f) => 'The message was removed.',
};

function until(f) {
  if (!Number.isFinite(f.until)) return '';
  return ' until ' + new Date(f.until).toLocaleString();
}

export const onRoomFrame = {
  room(f) {
    if (typeof f.room !== 'string') return;
    change.roomSettings(f.room, f);
    if (typeof f.by === 'string' && state.rooms[f.room] && !isMe(f.by)) {
      change.noticeIn(f.room, f.by + ' changed the settings of #' + f.room + '.');
    }
    if (typeof f.role !== 'string' && f.role !== null) return; // an announcement, not a reply
    if (creating && f.room === creating) {
      creating = '';
      change.closePanel();
      acceptInvite(f.room); // made: now joined, and shown
    } else if (state.roomPanel.kind === 'settings') {
      change.panelOutcome('', 'Saved.');
    }
  },

  rooms: change.directoryListed,

  moderation(f) {
    const done = DONE[f.action];
    const text = done ? done(f) : 'Done.';
    if (state.roomPanel.kind) change.panelOutcome('', text);
    else change.noticeInCurrent(text, 'info');
  },

  moderated(f) {
    if (typeof f.room !== 'string') return;
    const by = typeof f.by === 'string' ? f.by : 'A moderator';
    if (f.action === 'invite') return change.invited(f.room, by);
    if (f.action === 'kick') {
      return change.roomGone(f.room, by + ' removed you from #' + f.room + '.');
    }
    if (f.action === 'ban') {
      return change.roomGone(f.room, by + ' banned you from #' + f.room + until(f) + '.');
    }
    if (f.action === 'private') {
      const why = '#' + f.room + ' is now private: only its members may be in it.';
      return change.roomGone(f.room, why);
    }
    if (f.action === 'role' && typeof f.role === 'string' && state.me) {
      change.roleChanged(f.room, state.me.username, f.role);
    }
    const what = {
      mute: 'muted you in #' + f.room + until(f),
      unmute: 'unmuted you in #' + f.room,
      role: 'made you ' + f.role + ' of #' + f.room,
    }[f.action];
    if (what && state.rooms[f.room]) change.noticeIn(f.room, by + ' ' + what + '.');
  },

  role(f) {
    if (typeof f.room !== 'string' || typeof f.username !== 'string') return;
    if (typeof f.role === 'string') change.roleChanged(f.room, f.username, f.role);
  },

  removed(f) {
    if (typeof f.room === 'string') change.messageRemoved(f.room, f.id);
  },
};

// A `leave` about ourselves from the server, for a room still listed: another tab or device of
// the account left it (the server takes every connection of the account out). Returns whether
// it was that.
export function leftElsewhere(f) {
  if (!isMe(f.username) || !state.roomOrder.includes(f.room) || Number.isInteger(f.count)) {
    return false;
  }
  change.roomGone(f.room, 'You left #' + f.room + ' on another tab or device.');
  return true;
}

// An error that answers one of the rooms' frames: shown in the open panel, or in the
// conversation. Returns whether it was one.
export function roomError(f, reason) {
  if (!ROOM_REQUESTS.includes(f.request)) return false;
  if (f.request === 'room' && f.room === creating) creating = '';
  if (f.request === 'rooms') change.directoryRefused();
  if (state.roomPanel.kind) change.panelOutcome(reason);
  else change.noticeInCurrent(reason, 'error');
  return true;
}
