// The connection's life (open, close, rejoin) and what the views call: join, switch, leave,
// load older messages. Frames from the server are handled in frames.js, sending our messages
// in outbox.js, typing notices in typing.js; every change to the state is a verb of state/.
import { checkSession, sessionEnded, socketReady, upgradeFailed } from './accounts.js';
import { Connection, socketUrl } from './connection.js';
import { dispatch } from './frames.js';
import { focusComposer, onKeydown } from './keys.js';
import { joinFrame } from './joining.js';
import { readIfSeen, socketGone, userActive } from './people.js';
import { openLinkInHash } from './search.js';
import { DEFAULT_ROOM, ROOM_NAME, dmKey, roomFromHash } from './protocol.js';
import * as change from './state/index.js';
import { isMe, session, state } from './state/index.js';
import { nextTick } from './vue.js';

export { show } from './state/index.js';
export {
  addPasskey,
  closeAccount,
  deletePasskey,
  endSession,
  openAccount,
  passkeySignIn,
  passkeySignUp,
  signOut,
  submitEntry,
} from './accounts.js';
export { discard, edit, retry, send } from './outbox.js';
export { typed } from './typing.js';
export { askStatusOfPeer, findPerson, knownNames, readIfSeen } from './people.js';
export {
  closeSearch,
  copyLink,
  moreResults,
  openResult,
  openSearch,
  runSearch,
} from './search.js';

// Close code of a socket whose session was revoked (docs/protocol.md).
const SESSION_REVOKED = 4003;

function onOpen() {
  change.socketOpened();
  socketReady(); // sends the identifying join once we know who we are
}

function onClose(delayMs, code, opened) {
  change.socketClosed(delayMs);
  change.searchLost();
  socketGone();
  change.sessionUnverified();
  if (code === SESSION_REVOKED) sessionEnded();
  else if (!opened) upgradeFailed(); // refused for a dead session cookie?
}

export function joinRoom(raw) {
  const name = raw.trim().replace(/^#/, '').toLowerCase();
  change.setRoomError('');
  if (!ROOM_NAME.test(name)) {
    change.setRoomError('Room names are 1–32 characters: a–z, 0–9, "-", "_" and ".".');
    return false;
  }
  if (state.roomOrder.includes(name)) {
    change.show('room', name);
    return true;
  }
  change.switchToLater(name); // shown when its welcome arrives
  if (session.identified && !session.requested.has(name)) {
    session.conn.send(joinFrame(name, false));
  }
  return true;
}

export function leaveRoom(name) {
  if (state.roomOrder.length <= 1) return; // a rejoin needs a room to identify in
  if (session.liveRooms.has(name)) session.conn.send({ type: 'leave', room: name });
  change.removeRoom(name);
}

export function openDm(peer) {
  if (isMe(peer)) return;
  const conv = change.ensureDm(peer);
  change.show('dm', dmKey(peer));
  if (conv.items.length === 0) loadOlder(conv); // earlier messages between the two of us
}

export const closeDm = change.closeDm;

function sendIfAny(frame) {
  if (frame) session.conn.send(frame);
}

// Asks for the page of messages before the oldest one shown (or, for a direct conversation
// that shows nothing yet, the latest page).
export function loadOlder(conv) {
  sendIfAny(change.olderPage(conv));
}

// Asks for the missed messages just before a gap row's end (the next click asks for more).
export function loadGap(conv, gap) {
  sendIfAny(change.gapPage(conv, gap.key));
}

// Replying: the composer answers `item` until it is sent or cancelled.
export function replyTo(conv, item) {
  change.startReply(conv, item);
  nextTick(focusComposer);
}

export const cancelReply = change.cancelReply;

// Shows a quote's original, loading older pages until it is there (views/conversation.js
// scrolls to it).
export function jumpToOriginal(conv, id) {
  sendIfAny(change.jumpTo(conv, id));
}

// The room's next page of members (a big room's presence lists only the first ones).
export function loadMembers(conv) {
  sendIfAny(change.membersPage(conv.name));
}

export async function askNotifications() {
  if (!('Notification' in window)) return;
  change.setNotifications(await Notification.requestPermission());
}

export function retryNow() {
  session.conn.retryNow();
}

export function start() {
  change.ensureRoom(DEFAULT_ROOM); // before joining, the server sends general's messages
  change.switchToLater(roomFromHash());
  openLinkInHash(); // a message's link (docs/search.md): shown once signed in
  window.addEventListener('hashchange', () => {
    if (openLinkInHash()) return;
    const room = roomFromHash();
    if (room && state.me) joinRoom(room);
    else if (room) change.switchToLater(room);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) change.tabShown();
    if (!document.hidden) userActive();
    if (!document.hidden) readIfSeen();
  });
  // The person is using the page (docs/protocol.md, "Presence"): not away.
  for (const kind of ['keydown', 'pointerdown']) {
    window.addEventListener(kind, userActive, { capture: true, passive: true });
  }
  document.addEventListener('keydown', onKeydown);
  setInterval(change.tick, 1000);
  const conn = new Connection(socketUrl(), {
    onOpen,
    onFrame: dispatch,
    onClose,
  });
  change.setConnection(conn);
  // Signed in already (a reload, a second tab)? Then straight to the chat. The socket waits
  // for the answer: a dead session cookie would have its upgrade refused, and the API's
  // answer (401) clears it.
  checkSession().finally(() => conn.connect());
}
