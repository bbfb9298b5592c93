// Our messages on their way: shown as "Sending…" until the server's copy (the acknowledgement,
// matched by cid) arrives, kept across reconnects, and resent with the same cid, which the
// server stores only once. The entries are state/outbox.js's; this module decides when they
// go out and what a refusal means.
import { focusComposer } from './keys.js';
import { dmKey } from './protocol.js';
import { outbox, session, state } from './state/index.js';
import { stoppedTyping } from './typing.js';
import { nextTick } from './vue.js';

const RETRY_MS = 1000; // after a refusal that is not the message's fault
const RETRIES = 5;
// Refusals of the message itself: sending it again can never succeed, only editing it.
// (no_such_message: the message it answers was deleted meanwhile.)
const PERMANENT = ['too_long', 'empty_text', 'invalid_field', 'missing_field', 'no_such_message',
  'no_such_file', 'too_many_files', 'files_need_account', 'files_unavailable'];
// The outbox keeps itself under the server's default rate limit (10 frames/s, burst 20), so
// a backlog sent after a reconnect is not refused (and, refused often, cut off with 1008).
const SEND_BURST = 16;
const SEND_PER_S = 8;

let tokens = SEND_BURST;
let tokensAt = Date.now();
let flushTimer = 0;

function takeToken() {
  const now = Date.now();
  tokens = Math.min(SEND_BURST, tokens + ((now - tokensAt) / 1000) * SEND_PER_S);
  tokensAt = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

function frameFor(entry) {
  const frame =
    entry.kind === 'room'
      ? { type: 'message', room: entry.target, text: entry.text, cid: entry.cid }
      : { type: 'dm', to: entry.target, text: entry.text, cid: entry.cid };
  if (entry.replyTo) frame.reply_to = entry.replyTo.id;
  if (entry.files && entry.files.length) frame.files = entry.files.map((f) => f.id);
  return frame;
}

// Sends whatever in the outbox has not gone out on this socket yet.
export function flushOutbox() {
  clearTimeout(flushTimer);
  if (!session.identified) return;
  for (const entry of state.outbox) {
    if (entry.status !== 'sending' || entry.sentOn === session.serial) continue;
    if (entry.kind === 'room' && !session.liveRooms.has(entry.target)) continue;
    if (!takeToken()) {
      flushTimer = setTimeout(flushOutbox, 1000 / SEND_PER_S);
      return;
    }
    if (session.conn.send(frameFor(entry))) outbox.markSent(entry.cid);
  }
}

function resendLater(entry) {
  outbox.markUnsent(entry.cid, true);
  setTimeout(flushOutbox, RETRY_MS);
}

function find(cid) {
  return state.outbox.find((e) => e.cid === cid);
}

// What the user can do about a direct message to someone who is not online.
function offlineReason(name) {
  return (
    name + ' is offline, so it was not delivered. Send it again when ' + name +
    ' is back, or mention @' + name + ' in a room: rooms keep their messages.'
  );
}

// The composer's Send: false if there was nothing to send.
export function send(text, files = []) {
  const cid = outbox.enqueue(text, files);
  if (cid === null) return false;
  const entry = find(cid);
  stoppedTyping(entry.kind === 'room' ? entry.target : '@' + dmKey(entry.target));
  flushOutbox(); // if the socket is down it goes out after the rejoin
  return true;
}

// An error named our cid.
export function sendRefused(cid, code, reason) {
  const entry = find(cid);
  if (!entry) return;
  if (code === 'rate_limited') {
    // We outran the server's limit: wait for our own bucket to refill, then send it again.
    // Not counted as a try, since the message itself is fine.
    tokens = 0;
    tokensAt = Date.now();
    outbox.markUnsent(cid, false);
    setTimeout(flushOutbox, RETRY_MS);
    return;
  }
  const transient = ['rate_limited', 'not_in_room', 'not_joined', 'store_failed', 'broker_down'];
  if (transient.includes(code) && entry.tries < RETRIES) {
    resendLater(entry); // not the message's fault: once the limit or the rejoin allows
    return;
  }
  if (PERMANENT.includes(code)) {
    outbox.refusedForGood(cid, reason);
    return;
  }
  outbox.failed(cid, code === 'not_online' && entry.kind === 'dm' ? offlineReason(entry.target)
    : reason);
}

// A rate_limited error does not say which frame it refused: send again whatever is not yet
// acknowledged on this socket (a repeat of one that did get through is stored only once).
export function resendUnacknowledged() {
  for (const entry of state.outbox) {
    if (entry.status === 'sending' && entry.sentOn === session.serial) resendLater(entry);
  }
}

export function retry(cid) {
  if (!find(cid)) return;
  outbox.retry(cid);
  flushOutbox();
}

export function discard(cid) {
  outbox.settle(cid);
}

export function edit(cid) {
  outbox.backToComposer(cid);
  nextTick(focusComposer);
}
