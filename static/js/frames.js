// What each frame from the server changes (docs/protocol.md, "Server → client"): each handler
// checks the frame's shape and hands it to the verbs of state/; the socket's side effects
// (joins to send again, notifications) are decided here.
import { filesOf, withoutFileLines } from './files.js';
import { accountJoinRefused, reasonFor } from './accounts.js';
import { flushOutbox, resendUnacknowledged, sendRefused } from './outbox.js';
import { openDmLink, showMessage } from './search.js';
import { HISTORY_PAGE, dmKey } from './protocol.js';
import { isUsableAvatar } from './avatar.js';
import { joinFrame, sendIdentifyingJoin } from './joining.js';
import { leftElsewhere, onRoomFrame, roomError, welcomeRooms } from './rooms.js';
import { askStatusOf, joinedNow, readIfSeen, statusReply, statusRefused } from './people.js';
import * as change from './state/index.js';
import { isMe, session, state } from './state/index.js';

const TYPING_SHOWN_MS = 4000; // "x is typing…" lasts this long after their last notice
const BROKER_RETRY_MS = 2000; // a join refused with broker_down is sent again after this

function notify(conv, item) {
  if (!item || state.notifications !== 'granted') return;
  const title =
    conv.kind === 'dm' ? item.username + ' (direct message)' : item.username + ' in #' + conv.name;
  // The Notification API shows its strings as text, like the rest of the page.
  const note = new Notification(title, {
    body: item.text.slice(0, 200),
    tag: conv.kind + ':' + conv.name,
  });
  note.onclick = () => {
    window.focus();
    change.show(conv.kind, conv.kind === 'room' ? conv.name : dmKey(conv.name));
    note.close();
  };
}

// One shape for `message` and `dm` frames and the entries of a `history` frame.
function fromServer(m) {
  const files = filesOf(m);
  const text = typeof m.message === 'string' ? m.message : m.text;
  return {
    id: m.id,
    username: typeof m.from === 'string' ? m.from : m.username,
    avatar: m.avatar,
    // The link lines the server adds for clients that do not show `files`: shown as files here.
    text: typeof text === 'string' ? withoutFileLines(text, files) : text,
    files,
    ts: m.ts,
    cid: m.cid,
    guest: m.guest === true,
    bot: m.bot === true, // a bot account's or a webhook's post
    replyTo: m.reply_to,
    edited: m.edited,
    reactions: m.reactions,
  };
}

// The conversation an `edited` or `deleted` event is about: its `room`, or the direct one
// `with` a person; else the one shown (ids are only unique within a conversation).
function conversationOf(f) {
  if (typeof f.room === 'string') return { kind: 'room', name: f.room };
  if (typeof f.with === 'string') return { kind: 'dm', name: f.with };
  if (typeof f.from === 'string' && typeof f.to === 'string') {
    return { kind: 'dm', name: isMe(f.from) ? f.to : f.from };
  }
  return change.currentConversation();
}

const onFrame = {
  welcome(f) {
    const limits = f.limits && typeof f.limits === 'object' ? f.limits : {};
    const first = change.welcomed({
      username: f.username,
      avatar: f.avatar,
      token: typeof f.token === 'string' ? f.token : null,
      guest: !(f.account && typeof f.account === 'object'),
      textChars: Number.isInteger(limits.text_chars) ? limits.text_chars : 0,
      rooms: (Array.isArray(f.rooms) ? f.rooms : []).filter((name) => typeof name === 'string'),
    });
    joinedNow();
    if (first) rejoinTheRest();
    welcomeRooms(f); // the room's settings; the account's rooms joined on other devices
    change.showAfterWelcome(first);
    flushOutbox();
    jumpWhenJoined(); // a link or search result waiting for its room (or the sign-in)
  },

  message(f) {
    if (typeof f.room !== 'string') return;
    notify({ kind: 'room', name: f.room }, change.roomMessage(f.room, fromServer(f)));
  },

  dm(f) {
    if (state.me === null || typeof f.from !== 'string' || typeof f.to !== 'string') return;
    const fromMe = isMe(f.from);
    const peer = fromMe ? f.to : f.from;
    const fresh = !state.dms[dmKey(peer)];
    const avatar = !fromMe && isUsableAvatar(f.avatar) ? f.avatar : '';
    const item = change.directMessage(peer, fromServer(f), avatar);
    const conv = state.dms[dmKey(peer)];
    notify(conv, item);
    if (fresh) sendIfAny(change.olderPage(conv)); // what the two said before this page opened
  },

  history(f) {
    const target =
      typeof f.with === 'string' ? { kind: 'dm', name: f.with } : { kind: 'room', name: f.room };
    const list = (Array.isArray(f.messages) ? f.messages : []).map(fromServer);
    change.historyPage(target, list, { recovered: f.recovered, more: f.more });
    sendIfAny(change.jumpStep(target)); // a message jumped to not loaded yet: the next page
    change.changeMarked(target, f.change); // the first mark: changes after it follow or resume
  },

  presence(f) {
    change.presence(f);
    askStatusOf(f.room);
  },
  members(f) {
    change.members(f);
    askStatusOf(f.room);
  },
  join(f) {
    change.joined(f);
    change.seenOnline(f.username);
  },
  leave(f) {
    if (!leftElsewhere(f)) change.left(f);
  },
  ...onRoomFrame, // room, rooms, moderation, moderated, role, removed (rooms.js)

  // Changes of messages we hold, live or in answer to `changes` (docs/protocol.md).
  // Replies' quotes follow their originals.
  edited(f) {
    change.messageChanged(f);
    const conv = conversationOf(f);
    if (conv) change.quoteEdited(conv, f.id, f.message);
  },
  reacted: change.messageChanged,
  deleted(f) {
    change.messageChanged(f);
    const conv = conversationOf(f);
    if (conv) change.quoteDeleted(conv, f.id);
  },
  changes(f) {
    // Each entry as if it came live (replies' quotes follow their originals too).
    for (const entry of Array.isArray(f.changes) ? f.changes : []) {
      if (entry && typeof entry === 'object' && CHANGE_EVENTS.has(entry.type)) {
        onFrame[entry.type](entry);
      }
    }
    const target =
      typeof f.with === 'string' ? { kind: 'dm', name: f.with } : { kind: 'room', name: f.room };
    if (typeof f.with !== 'string' && typeof f.room !== 'string') return;
    change.changeMarked(target, f.change);
    // Past 200 changed messages the reply says `more`: the rest after its `change`.
    if (f.more === true && Number.isInteger(f.change)) sendIfAny(changesFrame(target, f.change));
  },

  // After a join's history: the account's unread counts (read marks kept by the server).
  unread(f) {
    for (const entry of Array.isArray(f.conversations) ? f.conversations : []) {
      if (!entry || typeof entry !== 'object') continue;
      const conv = change.unreadEntry(entry);
      // A direct conversation the page did not show yet: its latest messages.
      if (conv && conv.kind === 'dm' && conv.items.length === 0) sendIfAny(change.olderPage(conv));
    }
    readIfSeen();
  },

  read: change.readMarked,

  status(f) {
    if (typeof f.room === 'string') change.statusChanged(f);
    else statusReply(f.users);
  },

  typing(f) {
    if (typeof f.username !== 'string' || isMe(f.username)) return;
    if (typeof f.with === 'string') {
      const until = Date.now() + TYPING_SHOWN_MS;
      change.dmTypingUntil(f.username, until);
      setTimeout(() => change.dmTypingEnded(f.username, until), TYPING_SHOWN_MS);
      return;
    }
    if (typeof f.room !== 'string' || !state.rooms[f.room]) return;
    const until = Date.now() + TYPING_SHOWN_MS;
    change.typingUntil(f.room, f.username, until);
    setTimeout(() => change.typingEnded(f.room, f.username, until), TYPING_SHOWN_MS);
  },

  // The answer to the search view's `search` (state/search.js).
  search_results: change.searchResults,

  error(f) {
    const reason = typeof f.reason === 'string' ? f.reason : String(f.code);
    if (f.request === 'history') return historyRefused(f.code);
    if (f.request === 'search') return change.searchRefused(f.code, reason);
    if (f.request === 'members') return change.membersRefused(f.room);
    if (f.request === 'join') return joinRefused(f, reason);
    // Before rate_limited: `status` answers are matched to their questions in order.
    if (f.request === 'status') return statusRefused();
    // A refused mark goes again with the next message seen; `active` with the next activity.
    if (f.request === 'read' || f.request === 'active') return;
    // A refused `changes` (an older server, a busy one): the next rejoin asks again.
    if (f.request === 'changes') return;
    if (roomError(f, reason)) return;
    if (typeof f.cid === 'string') return sendRefused(f.cid, f.code, reason);
    if (f.code === 'rate_limited') return resendUnacknowledged();
    if (f.request === 'typing') return; // a dropped typing notice does not matter
    change.noticeInCurrent(reason, 'error');
  },
};

function sendIfAny(frame) {
  if (frame) session.conn.send(frame);
}

const CHANGE_EVENTS = new Set(['edited', 'reacted', 'deleted']);

// The `changes` frame for what changed in a conversation after change number `after`.
function changesFrame(target, after) {
  const frame = { type: 'changes', after };
  if (target.kind === 'room') frame.room = target.name;
  else frame.with = target.name;
  return frame;
}

const JUMP_RETRY_MS = 1000; // a jump's page refused for the history byte rate: asked again

// A refused page ends the jumps that needed it (they say so), except over the byte rate:
// then they go on after a moment.
function historyRefused(code) {
  change.historyRefused(code);
  const jumping = [...Object.values(state.rooms), ...Object.values(state.dms)].filter(
    (conv) => conv.jump !== null,
  );
  if (code !== 'rate_limited') {
    for (const conv of jumping) sendIfAny(change.jumpStep(conv));
    return;
  }
  if (jumping.length) {
    setTimeout(() => {
      for (const conv of jumping) if (session.identified) sendIfAny(change.jumpStep(conv));
    }, JUMP_RETRY_MS);
  }
}

// The message a link or a search result named, once its room's welcome is here (the socket's
// first welcome for a link opened before signing in).
function jumpWhenJoined() {
  const where = session.jumpLater;
  if (!where || !session.identified) return;
  if (where.kind === 'room' && !session.liveRooms.has(where.name)) return;
  change.jumpLater(null);
  if (where.kind === 'dmLink') openDmLink(where);
  else showMessage(where);
}

// After the identifying join of a new socket: the rest of the rooms we were in, the one the
// URL asks for, and the direct conversations' latest pages (they have no `since`; what we
// already have is dropped as a duplicate) and their edits, deletes and reactions since the
// last change we applied (a conversation without a mark, first seen live, asks for all).
function rejoinTheRest() {
  const { conn, liveRooms, requested, switchTo } = session;
  for (const name of state.roomOrder) {
    if (!liveRooms.has(name) && !requested.has(name)) conn.send(joinFrame(name, false));
  }
  if (switchTo && !liveRooms.has(switchTo) && !requested.has(switchTo)) {
    conn.send(joinFrame(switchTo, false));
  }
  if (!state.historySupported) return;
  for (const key of state.dmOrder) {
    const conv = state.dms[key];
    if (conv.items.length === 0) continue;
    const mark = Number.isInteger(conv.changeMark) ? conv.changeMark : 0;
    conn.send(changesFrame({ kind: 'dm', name: conv.name }, mark));
    conn.send({ type: 'history', with: conv.name, limit: HISTORY_PAGE });
  }
}

function joinRefused(f, reason) {
  const { identity } = session;
  if (!session.identified) {
    if (f.code === 'broker_down' && identity) {
      // The server cannot reach the rest of the chat for a moment (Redis): ask again soon.
      setTimeout(() => session.identified || sendIdentifyingJoin(), BROKER_RETRY_MS);
      return;
    }
    if (f.field === 'token' && identity && identity.token) {
      // A token the server no longer knows: the name may be free, so try without it.
      change.forgetToken();
      sendIdentifyingJoin();
      return;
    }
    if (identity && identity.account) {
      accountJoinRefused(f.code, reason); // its session may have ended meanwhile
      return;
    }
    if (f.code === 'sign_in_required') {
      // This server takes no guests: the sign-in form, without the guest choice.
      change.guestsRefused();
      change.backToForm(null, reasonFor(f), 'signin');
      return;
    }
    // Back to the form (also after a reconnect, if someone else took the name meanwhile),
    // with the reason beside the field it is about.
    const nameCodes = ['invalid_username', 'username_taken', 'username_mismatch', 'name_registered'];
    let field = null;
    if (f.field === 'email') field = 'email';
    else if (f.field === 'username' || nameCodes.includes(f.code)) field = 'username';
    change.backToForm(field, f.code === 'name_registered' ? reasonFor(f) : reason);
    return;
  }
  // Only "Create room" makes rooms on this server (--room-creation explicit): say where it is.
  const hint =
    f.code === 'no_such_room' && !state.auth.roomsByJoining && state.auth.account
      ? ' To make it, use "Create room".'
      : '';
  change.roomRefused(f.room, reason + hint);
  const later = session.jumpLater;
  if (later && later.kind === 'room' && later.name === String(f.room).toLowerCase()) {
    change.jumpLater(null); // a link's or a search result's room: not for this reader
    change.setRoomError(''); // the notice says it, not the sidebar's join form
    change.setJumpNotice(change.NOT_AVAILABLE);
  }
}

export function dispatch(frame) {
  const handler = Object.prototype.hasOwnProperty.call(onFrame, frame.type) && onFrame[frame.type];
  if (handler) handler(frame);
}
