// Verbs on replies (docs/protocol.md, "Replies"): the message the composer answers, the
// quotes messages show (kept in step with the originals' edits, deletes and removals). A click
// on a quote shows its original through jumps.js.
import { own } from './store.js';

// As the server cuts an excerpt (chat/history/quotes.py EXCERPT_CHARS).
const EXCERPT_CHARS = 100;

export function excerptOf(text) {
  const flat = text.split(/\s+/u).filter(Boolean).join(' ');
  return flat.length <= EXCERPT_CHARS ? flat : flat.slice(0, EXCERPT_CHARS - 1).trimEnd() + '…';
}

// A message's `reply_to` from the server as the views use it, or null.
export function quoteFrom(raw) {
  if (!raw || typeof raw !== 'object' || !Number.isInteger(raw.id)) return null;
  return {
    id: raw.id,
    author: typeof raw.author === 'string' ? raw.author : '',
    excerpt: typeof raw.excerpt === 'string' ? raw.excerpt : '',
    deleted: raw.deleted === true,
  };
}

// The composer of `target` now answers `item` (a message shown there).
export function startReply(target, item) {
  const conv = own(target);
  if (!conv) return;
  conv.replyingTo = { id: item.id, author: item.username, excerpt: excerptOf(item.text) };
}

export function cancelReply(target) {
  const conv = own(target);
  if (conv) conv.replyingTo = null;
}

function quoting(conv, id) {
  return conv.items.filter((i) => i.type === 'message' && i.replyTo && i.replyTo.id === id);
}

// The original `id` of the conversation was edited: its quotes show the new text.
export function quoteEdited(target, id, text) {
  const conv = own(target);
  if (!conv || !Number.isInteger(id) || typeof text !== 'string') return;
  for (const item of quoting(conv, id)) {
    item.replyTo = { ...item.replyTo, excerpt: excerptOf(text) };
  }
  if (conv.replyingTo && conv.replyingTo.id === id) {
    conv.replyingTo = { ...conv.replyingTo, excerpt: excerptOf(text) };
  }
}

// The original `id` was deleted or removed: its quotes say so, with no author or text.
export function quoteDeleted(target, id) {
  const conv = own(target);
  if (!conv || !Number.isInteger(id)) return;
  for (const item of quoting(conv, id)) {
    item.replyTo = { id, author: '', excerpt: '', deleted: true };
  }
  if (conv.replyingTo && conv.replyingTo.id === id) conv.replyingTo = null;
}
