// Verbs on the search view (docs/search.md, "The page"): the form, the `search` frames it
// sends, the `search_results` pages it shows, and why a search got nothing.
import { session, state } from './store.js';

// The form's `where` choices: '' (everywhere), 'room:<name>' or 'dm:<name>'.
function whereFields(where) {
  if (where.startsWith('room:')) return { room: where.slice(5) };
  if (where.startsWith('dm:')) return { with: where.slice(3) };
  return {};
}

export function openSearch() {
  state.search.open = true;
  state.sidebarOpen = false;
  // The list is out of sight: what arrives meanwhile is not read (the list, shown again,
  // tells where it is scrolled: views/conversation.js).
  session.atBottom = false;
}

export function closeSearch() {
  state.search.open = false;
}

// One field of the form: query, where, from, after, before.
export function setSearchField(name, value) {
  state.search.form[name] = value;
}

// The `search` frame for the form's first page (`more`: the page after the ones shown), marked
// as asked for; or null with the reason shown (nothing typed, not connected).
export function searchFrame(connected, more) {
  const s = state.search;
  const query = more ? s.asked.query : s.form.query.trim();
  if (!query) {
    s.error = more ? '' : 'Type a word to search for.';
    return null;
  }
  if (!connected) {
    s.error = 'Not connected: search again once the connection is back.';
    return null;
  }
  if (s.loading) return null; // one search at a time: its answer does not say which it was
  let frame;
  if (more) {
    frame = { ...s.asked.frame, offset: s.nextOffset };
  } else {
    const { where, from, after, before } = s.form;
    frame = { type: 'search', query, ...whereFields(where) };
    if (from.trim()) frame.from = from.trim().replace(/^@/, '');
    if (after) frame.after = after; // a date input's YYYY-MM-DD: a UTC day (docs/protocol.md)
    if (before) frame.before = before;
    s.asked = { query, frame };
    s.results = [];
    s.more = false;
    s.done = false;
  }
  s.error = '';
  s.loading = true;
  return frame;
}

// A `search_results` page: the first replaces what was shown, the next ones follow it.
export function searchResults(f) {
  const s = state.search;
  if (!s.loading || !s.asked || f.query !== s.asked.query) return; // an answer we gave up on
  s.loading = false;
  s.done = true;
  const list = (Array.isArray(f.results) ? f.results : []).filter(isResult).map(resultOf);
  s.results = f.offset > 0 ? s.results.concat(list) : list;
  s.more = f.more === true && Number.isInteger(f.next_offset);
  s.nextOffset = s.more ? f.next_offset : 0;
}

function isResult(r) {
  return (
    r !== null &&
    typeof r === 'object' &&
    Number.isInteger(r.id) &&
    (typeof r.room === 'string' || typeof r.with === 'string') &&
    typeof r.username === 'string' &&
    Array.isArray(r.excerpt)
  );
}

function resultOf(r) {
  return {
    key: (typeof r.room === 'string' ? 'room:' + r.room : 'dm:' + r.with) + ':' + r.id,
    id: r.id,
    kind: typeof r.room === 'string' ? 'room' : 'dm',
    name: typeof r.room === 'string' ? r.room : r.with,
    username: r.username,
    avatar: typeof r.avatar === 'string' ? r.avatar : '',
    guest: r.guest === true,
    ts: Number.isFinite(r.ts) ? r.ts : 0,
    // [text, hit] pairs: text stays text; the view marks the hits (never markup).
    excerpt: r.excerpt
      .filter((p) => Array.isArray(p) && typeof p[0] === 'string')
      .map((p) => [p[0], p[1] === true]),
  };
}

// The server refused the search: why, in words (the results shown stay).
export function searchRefused(code, reason) {
  const s = state.search;
  s.loading = false;
  if (code === 'rate_limited') s.error = 'Too many searches in a row: try again in a moment.';
  else if (code === 'no_such_room') s.error = 'That room cannot be searched: ' + reason + '.';
  else if (code === 'unknown_type') s.error = 'This server cannot search messages.';
  else s.error = 'The search was refused: ' + reason + '.';
}

// The socket closed with a search on its way: it will not be answered.
export function searchLost() {
  const s = state.search;
  if (!s.loading) return;
  s.loading = false;
  s.error = 'The connection was lost before the search was answered: search again.';
}
