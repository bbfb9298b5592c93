// What the page knows of the protocol (docs/protocol.md): room names, page sizes, the keys
// it files conversations under, and the cids it gives its messages.

export const DEFAULT_ROOM = 'general';
// The protocol's rule for room names, checked here to answer at once.
export const ROOM_NAME = /^[a-z0-9_.-]{1,32}$/;
export const HISTORY_PAGE = 50;
export const HISTORY_MAX = 200; // the most one `history` request may ask for (docs/protocol.md)

// A direct conversation's key: the other person's name, lower-cased.
export function dmKey(name) {
  return name.toLocaleLowerCase();
}

// Where a conversation's unsent text is kept: 'room:name' or 'dm:name'.
export function draftKey(conv) {
  return conv.kind + ':' + conv.name;
}

// Characters as the server counts them (code points), not UTF-16 units.
export function charCount(text) {
  return [...text].length;
}

export function newCid() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The room the URL's #fragment names, or null.
export function roomFromHash() {
  let name = '';
  try {
    name = decodeURIComponent(location.hash.replace(/^#/, '')).trim().toLowerCase();
  } catch (_) {
    return null;
  }
  return ROOM_NAME.test(name) ? name : null;
}
