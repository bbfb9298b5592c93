// Turns a message's text into pieces that the views render as text nodes and <a> elements.
// User text never goes through an HTML parser: there is no v-html or innerHTML in this page.

// A link ends at white space or at a character that cannot appear unescaped in a URL.
const LINK = /https?:\/\/[^\s<>"'`]+/giu;
// Punctuation that usually ends the sentence rather than the URL ("see https://x.org.").
const TRAILING = /[.,;:!?'"*_~]+$/u;
// A mention is @ followed by a name made of letters, digits and a little punctuation; the
// reader's own name is matched whole as well, since names may hold spaces.
const MENTION_CHARS = '[\\p{L}\\p{N}\\p{M}_.\\-]+';

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The link's href, or null: only http and https, so "javascript:" and friends never
// become clickable whatever the text says.
export function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

// Splits `raw` at its end into the URL and what follows it (closing punctuation, and a ")"
// that has no "(" inside the URL, as in "(see https://example.org)").
function trimLink(raw) {
  let url = raw.replace(TRAILING, '');
  while (url.endsWith(')') && countOf(url, '(') < countOf(url, ')')) url = url.slice(0, -1);
  return url;
}

function countOf(text, ch) {
  return text.split(ch).length - 1;
}

function mentionPattern(me) {
  const own = me ? '@' + escapeRegExp(me) + '(?![\\p{L}\\p{N}_])|' : '';
  return new RegExp('(?<![\\p{L}\\p{N}_@])(?:' + own + '@' + MENTION_CHARS + ')', 'giu');
}

function sameName(a, b) {
  return a.toLocaleLowerCase() === b.toLocaleLowerCase();
}

// Pieces of plain text (no links): [{kind: 'text'|'mention', text, me}].
function splitMentions(text, me) {
  const pieces = [];
  const pattern = mentionPattern(me);
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) pieces.push({ kind: 'text', text: text.slice(last, match.index) });
    let name = match[0].slice(1);
    const isMe = Boolean(me) && sameName(name, me);
    if (!isMe) name = name.replace(/[.\-]+$/u, ''); // "@bob." ends a sentence
    if (!name) continue;
    pieces.push({ kind: 'mention', text: '@' + name, me: isMe });
    last = match.index + 1 + name.length;
  }
  if (last < text.length) pieces.push({ kind: 'text', text: text.slice(last) });
  return pieces;
}

// [{kind: 'text'|'mention'|'link', text, href?, me?}] covering all of `text`, in order.
export function parseText(text, me) {
  const pieces = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const url = trimLink(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    pieces.push(...splitMentions(text.slice(last, match.index), me));
    pieces.push({ kind: 'link', text: url, href });
    last = match.index + url.length;
  }
  pieces.push(...splitMentions(text.slice(last), me));
  return pieces.filter((p) => p.text !== '');
}
