// Verbs on the outbox: our messages from the moment they are sent until the server's copy
// arrives (or the user gives up on them). When and how they go out is ../outbox.js's business.
import { charCount, dmKey, draftKey, newCid } from '../protocol.js';
import { currentConversation, session, state } from './store.js';

function find(cid) {
  return state.outbox.find((e) => e.cid === cid);
}

function conversationOf(entry) {
  return entry.kind === 'room' ? state.rooms[entry.target] : state.dms[dmKey(entry.target)];
}

// A message for the conversation shown; returns its entry's cid, or null if there is nothing
// to send (or it is over the server's limit: the composer says why).
export function enqueue(text, files = []) {
  const conv = currentConversation();
  if (!conv || state.me === null || (!text.trim() && !files.length)) return null;
  const limit = state.limits.textChars;
  if (limit && charCount(text) > limit) return null;
  conv.sendError = '';
  const last = conv.items[conv.items.length - 1];
  const cid = newCid();
  const replyTo = conv.replyingTo; // sent with it, shown on it while it is on its way
  conv.replyingTo = null;
  state.outbox.push({
    cid,
    kind: conv.kind,
    target: conv.name,
    text,
    replyTo,
    files, // uploads it carries: the server's {id, name, size, type, url, ...}
    status: 'sending', // or 'failed', with the server's reason
    reason: '',
    sentOn: 0, // the socket it went out on; 0 = not yet
    tries: 0,
    permanent: false, // failed for a reason a retry cannot change
    // The item it was sent after: a failed message stays there, not below newer ones.
    after: last ? last.key : '',
  });
  return cid;
}

// The entry went out on the current socket.
export function markSent(cid) {
  const entry = find(cid);
  if (entry) entry.sentOn = session.serial;
}

// The entry goes out again with the next flush; `counted` when the refusal was a try.
export function markUnsent(cid, counted) {
  const entry = find(cid);
  if (!entry) return;
  if (counted) entry.tries += 1;
  entry.sentOn = 0;
}

// The acknowledgement came: the server's copy replaces ours.
export function settle(cid) {
  const at = state.outbox.findIndex((e) => e.cid === cid);
  if (at >= 0) state.outbox.splice(at, 1);
}

// The text back into the composer it came from, in front of anything typed since.
export function backToComposer(cid) {
  const entry = find(cid);
  if (!entry) return;
  const conv = conversationOf(entry);
  if (!conv) return;
  const key = draftKey(conv);
  const draft = state.drafts[key] || '';
  state.drafts[key] = draft.trim() ? entry.text + '\n' + draft : entry.text;
  settle(entry.cid);
}

// A refusal of the text itself: the reason goes beside the composer, and so does the text
// (unless something else is being typed: then its row offers Edit instead of Retry).
export function refusedForGood(cid, reason) {
  const entry = find(cid);
  if (!entry) return;
  const conv = conversationOf(entry);
  if (conv) conv.sendError = 'Not sent: ' + reason;
  if (conv && !(state.drafts[draftKey(conv)] || '').trim()) {
    backToComposer(cid);
    return;
  }
  entry.status = 'failed';
  entry.permanent = true;
  entry.reason = reason;
}

export function failed(cid, reason) {
  const entry = find(cid);
  if (!entry) return;
  entry.status = 'failed';
  entry.reason = reason;
}

export function retry(cid) {
  const entry = find(cid);
  if (entry) Object.assign(entry, { status: 'sending', reason: '', sentOn: 0, tries: 0 });
}
