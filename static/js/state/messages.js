// Verbs on a conversation's rows: messages as they arrive (live, replayed or asked for),
// notices, the gap row of a rejoin that could not catch up, and the pages of history.
import { HISTORY_MAX, HISTORY_PAGE, newCid } from '../protocol.js';
import { mentionsMe } from '../markdown.js';
import { settle } from './outbox.js';
import { quoteFrom } from './replies.js';
import {
  currentConversation,
  ensureDm,
  isCurrent,
  isMe,
  own,
  roomNamed,
  session,
  state,
} from './store.js';

// Notice lines a conversation keeps: churn must not bury the messages (the oldest go first).
export const MAX_NOTICE_LINES = 50;

export function addNotice(conv, text, tone, extra) {
  const notices = conv.items.filter((i) => i.type === 'notice');
  if (notices.length >= MAX_NOTICE_LINES) {
    conv.items.splice(conv.items.indexOf(notices[0]), 1);
  }
  const item = { key: 'n' + newCid(), type: 'notice', tone: tone || 'info', text };
  conv.items.push(Object.assign(item, { ts: Date.now() }, extra));
  return conv.items[conv.items.length - 1];
}

// An error line in the conversation shown.
export function noticeInCurrent(text, tone) {
  const conv = currentConversation();
  if (conv) addNotice(conv, text, tone);
}

function insertInOrder(conv, item) {
  if (item.id > conv.lastId) {
    conv.items.push(item);
    return;
  }
  // An older message (history, or a replay arriving out of order): before the first newer one.
  const at = conv.items.findIndex(
    (i) => i.type === 'message' && i.epoch === item.epoch && i.id > item.id,
  );
  conv.items.splice(at < 0 ? conv.items.length : at, 0, item);
}

// Adds one message to a conversation unless it is already there (by id). `news` is false
// for history that is not new to the reader, which is never counted as unread. Returns the
// item when it arrived while the tab was hidden and is worth a notification, else null.
function receive(conv, m, news) {
  if (!Number.isInteger(m.id) || typeof m.text !== 'string' || typeof m.username !== 'string') {
    return null;
  }
  const mine = isMe(m.username);
  if (mine && typeof m.cid === 'string') settle(m.cid);
  const known = conv.byId.get(m.id);
  if (known) {
    if (known.ts === m.ts && known.username === m.username) return null; // a replay we have
    // The same id for another message: the server's ids started again (it restarted without
    // its history). A new epoch keeps the new messages from being dropped as duplicates or
    // sorted in among the old ones.
    conv.epoch += 1;
    conv.byId.clear();
    conv.lastId = 0;
  }
  const item = {
    key: conv.epoch + ':' + m.id,
    type: 'message',
    epoch: conv.epoch,
    id: m.id,
    username: m.username,
    guest: m.guest === true, // from a guest (live, and in history since the store keeps it)
    bot: m.bot === true, // from a bot account or a webhook (kept in history too)
    avatar: typeof m.avatar === 'string' ? m.avatar : '',
    text: m.text,
    files: Array.isArray(m.files) ? m.files : [], // uploads it carries (../files.js)
    ts: Number.isFinite(m.ts) ? m.ts : Date.now(),
    edited: Number.isFinite(m.edited) ? m.edited : null, // when it was last edited (ms)
    reactions: Array.isArray(m.reactions) ? m.reactions : [], // [{emoji, count, users}]
    mine,
    mentionsMe: !mine && state.me !== null && mentionsMe(m.text, state.me.username),
    replyTo: quoteFrom(m.replyTo), // the quote of the message it answers, or null
  };
  const isNewest = m.id > conv.lastId;
  insertInOrder(conv, item);
  conv.byId.set(m.id, item);
  if (isNewest) conv.lastId = m.id;
  delete conv.typing[m.username];
  if (news && isNewest && !mine && state.me !== null) return countUnread(conv, item);
  return null;
}

function countUnread(conv, item) {
  if (!isCurrent(conv)) {
    if (conv.unread === 0) conv.firstUnreadKey = item.key; // where "New messages" will go
    conv.unread += 1;
    if (item.mentionsMe) conv.mentioned = true;
    if (item.mentionsMe) conv.mentions += 1;
  }
  if (!document.hidden) return null;
  state.hiddenUnread += 1;
  return conv.kind === 'dm' || item.mentionsMe ? item : null;
}

// A room's live message; returns what receive() does.
export function roomMessage(room, m) {
  const conv = roomNamed(room);
  return conv ? receive(conv, m, true) : null; // else a room we have left
}

// A direct message to or from `peer`; returns what receive() does.
export function directMessage(peer, m, avatar) {
  const conv = ensureDm(peer);
  if (avatar) conv.avatar = avatar;
  return receive(conv, m, true);
}

// A page we asked for (rooms: `room`; direct conversations: `with`), or the replay that
// follows a join (`recovered` is a boolean). `more` says whether older pages exist.
export function historyPage(target, list, { recovered, more }) {
  const conv = own(target);
  if (!conv) return;
  const onJoin = typeof recovered === 'boolean';
  if (!onJoin && conv.gapLoading) return fillGap(conv, list, more);
  const asked = !onJoin && conv.historyLoading;
  if (asked) conv.historyLoading = false;
  const news = asked ? false : conv.kind === 'dm' || conv.replayIsNews;
  const epoch = conv.epoch;
  for (const m of list) receive(conv, m, news);
  if (asked) conv.historyDone = typeof more === 'boolean' ? !more : list.length < HISTORY_PAGE;
  if (!onJoin) return;
  if (recovered === false && conv.epoch === epoch) markGap(conv, list);
  else if (more === false && !conv.resumeFrom) conv.historyDone = true; // nothing older
  conv.resumeFrom = 0;
}

// A rejoin's replay that could not hold everything missed: a row where the hole is (after
// the `since` we sent, before the replay's first message) from which the user loads it.
function markGap(conv, list) {
  const ids = list.map((m) => m.id).filter(Number.isInteger);
  const after = conv.resumeFrom;
  const before = ids.length ? Math.min(...ids) : 0;
  if (!(after > 0) || before <= after + 1) {
    if (!(after > 0)) addNotice(conv, 'Some messages were missed while you were away.');
    return;
  }
  const at = conv.items.findIndex(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id >= before,
  );
  if (at < 0) return;
  const first = conv.items[at];
  conv.items.splice(at, 0, {
    key: 'g' + newCid(),
    type: 'gap',
    epoch: conv.epoch,
    after, // the last id we have before the hole
    before, // the first id we have after it
    loading: false,
    ts: first.ts,
  });
}

// The answer to gapPage(): what went into the hole; the row shrinks or goes.
function fillGap(conv, list, more) {
  conv.gapLoading = false;
  const gap = conv.items.find((i) => i.type === 'gap' && i.loading);
  for (const m of list) receive(conv, m, false);
  if (!gap) return;
  gap.loading = false;
  const ids = list.map((m) => m.id).filter(Number.isInteger);
  if (ids.length) gap.before = Math.min(gap.before, ...ids);
  if (gap.epoch !== conv.epoch || !ids.length || more === false || gap.before <= gap.after + 1)
    conv.items.splice(conv.items.indexOf(gap), 1);
}

// The `history` frame for the page before the oldest message shown (or, for a direct
// conversation that shows nothing yet, the latest page), marked as asked for; or null.
export function olderPage(target) {
  const conv = own(target);
  if (!conv || !state.historySupported || conv.historyLoading || conv.historyDone) return null;
  if (conv.gapLoading) return null; // one page at a time: the answer does not say which it was
  if (!session.identified || (conv.kind === 'room' && !session.liveRooms.has(conv.name)))
    return null;
  const frame = { type: 'history', limit: HISTORY_PAGE };
  if (conv.kind === 'room') frame.room = conv.name;
  else frame.with = conv.name;
  const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
  if (oldest && oldest.id <= 1) {
    conv.historyDone = true; // ids start at 1: nothing is older
    return null;
  }
  if (oldest) frame.before = oldest.id;
  else if (conv.kind === 'room') return null; // a room's latest page comes with the join
  conv.historyLoading = true;
  return frame;
}

// The `history` frame for the missed messages just before a gap row's end (the next click
// asks for more), marked as asked for; or null.
export function gapPage(target, gapKey) {
  const conv = own(target);
  if (!conv || !state.historySupported || conv.gapLoading || conv.historyLoading) return null;
  if (!session.identified || !session.liveRooms.has(conv.name)) return null;
  const gap = conv.items.find((i) => i.key === gapKey);
  if (!gap) return null;
  conv.gapLoading = true;
  gap.loading = true;
  return {
    type: 'history',
    room: conv.name,
    before: gap.before,
    limit: Math.min(HISTORY_MAX, gap.before - gap.after - 1),
  };
}

// A server without history (unknown_type) or a refused page: stop asking, show what we have.
// Over the history byte rate (rate_limited) nothing is lost: the next scroll or click asks again.
export function historyRefused(code) {
  if (code === 'unknown_type') state.historySupported = false;
  for (const conv of [...Object.values(state.rooms), ...Object.values(state.dms)]) {
    if (code === 'rate_limited') {
      conv.historyLoading = false;
      conv.gapLoading = false;
      for (const gap of conv.items.filter((i) => i.type === 'gap')) gap.loading = false;
      continue;
    }
    if (conv.historyLoading) {
      conv.historyLoading = false;
      conv.historyDone = true;
    }
    if (conv.gapLoading) {
      conv.gapLoading = false;
      conv.items = conv.items.filter((i) => i.type !== 'gap');
    }
  }
}
