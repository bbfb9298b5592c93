// What the search view and the message links do (docs/search.md, "The page"): send searches,
// open a result or a link as the message in its conversation, copy a message's link.
import { joinFrame } from './joining.js';
import { dmKey } from './protocol.js';
import * as change from './state/index.js';
import { isMe, session, state } from './state/index.js';
import { nextTick } from './vue.js';

const COPIED_SHOWN_MS = 4000; // how long "Link copied" stays

function sendIfAny(frame) {
  if (frame) session.conn.send(frame);
}

function connected() {
  return state.status === 'open' && session.identified;
}

export function runSearch() {
  sendIfAny(change.searchFrame(connected(), false));
}

export function moreResults() {
  sendIfAny(change.searchFrame(connected(), true));
}

export function openSearch() {
  change.openSearch();
  nextTick(() => {
    const field = document.getElementById('search-query');
    if (field) field.select();
  });
}

export function closeSearch() {
  change.closeSearch();
  nextTick(() => {
    const composer = document.getElementById('composer-text');
    if (composer) composer.focus();
  });
}

// A result: its conversation shown, the message in it (older pages loaded as needed).
export function openResult(result) {
  showMessage({ kind: result.kind, name: result.name, id: result.id });
}

// Shows message `id` of a room or of the direct conversation with `name`: at once if the page
// is in that conversation, else once the room's join (or the sign-in) is answered.
export function showMessage(where) {
  if (where.kind === 'dm' && isMe(where.name)) return;
  change.closeSearch();
  const joined = where.kind === 'dm' || session.liveRooms.has(where.name);
  if (!session.identified || !joined) {
    change.jumpLater(where); // frames.js jumpWhenJoined() takes it up
    if (where.kind !== 'room') return;
    change.switchToLater(where.name); // joined after the sign-in, or now
    if (session.identified && !session.requested.has(where.name)) {
      session.conn.send(joinFrame(where.name, false));
    }
    return;
  }
  const conv = where.kind === 'room' ? state.rooms[where.name] : change.ensureDm(where.name);
  change.show(where.kind, where.kind === 'room' ? where.name : dmKey(where.name));
  sendIfAny(change.jumpTo(conv, where.id));
}

// The URL's #fragment, if it is a message's link: that message is shown (after the sign-in
// if needed). Returns whether it was one.
export function openLinkInHash() {
  const link = change.linkFromHash(location.hash);
  if (!link) return false;
  if (link.kind === 'room') {
    showMessage(link);
    return true;
  }
  if (!state.me) {
    change.jumpLater({ kind: 'dmLink', names: link.names, id: link.id });
    return true;
  }
  openDmLink(link);
  return true;
}

// A direct message's link, for the signed-in reader: their conversation with the other one.
export function openDmLink(link) {
  history.replaceState(null, '', location.pathname); // taken up: a reload shows the room
  const peer = change.peerOfLink(link);
  if (peer === null) {
    change.closeSearch();
    change.setJumpNotice(change.NOT_AVAILABLE);
    return;
  }
  showMessage({ kind: 'dm', name: peer, id: link.id });
}

// Puts the message's link on the clipboard; where the page may not (http:// from another
// host), a field holding it, selected, for the reader to copy (views/search.js).
export async function copyLink(conv, item) {
  const url = change.linkTo(conv, item.id);
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch (_) {
      copied = false; // refused (no permission, not focused): the field instead
    }
  }
  change.linkShown(url, copied);
  if (copied) setTimeout(() => change.linkShown(null, false, url), COPIED_SHOWN_MS);
}
