// The rows of a conversation's message list: messages grouped by sender, date lines, the
// "New messages" divider, notices, gap rows and our messages on their way.
import { copyLink, discard, edit, jumpToOriginal, loadGap, replyTo, retry } from '../actions.js';
import { deleteMessage, startEditing, toggleReaction } from '../changes.js';
import { messageFiles } from '../files.js';
import { state } from '../state/index.js';
import { h } from '../vue.js';
import { openEmojiPicker } from './emojipicker.js';
import { Avatar, richText, timeOfDay, timeTag } from './parts.js';
import { button, messageTools } from './rooms.js';

const GROUP_MS = 5 * 60 * 1000; // one sender's messages this close together share a heading
const weekday = new Intl.DateTimeFormat(undefined, {
  weekday: 'long',
  month: 'long',
  day: 'numeric',
});
const longDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'full' });

// Whether `item` continues `prev`'s run: same sender, soon after. Its avatar and name are
// then left out of sight (the name stays for screen readers), as chats usually do.
function continues(prev, item) {
  return (
    prev !== null &&
    prev.type === 'message' &&
    prev.username === item.username &&
    item.ts - prev.ts < GROUP_MS
  );
}

function dayOf(ts) {
  return new Date(ts).toDateString();
}

// "Today", "Yesterday", a weekday and date this year, or the full date.
function dayLabel(ts) {
  const date = new Date(ts);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return (date.getFullYear() === today.getFullYear() ? weekday : longDate).format(date);
}

function dayRow(ts) {
  return h('li', { key: 'day:' + dayOf(ts), class: 'day', role: 'separator' }, [
    h('span', dayLabel(ts)),
  ]);
}

function dividerRow() {
  return h('li', { key: 'unread-divider', class: 'unread-divider', role: 'separator' }, [
    h('span', 'New messages'),
  ]);
}

// Where messages missed while away could not all be sent on the rejoin: load them here.
function gapRow(conv, item) {
  return h('li', { key: item.key, class: 'gap' }, [
    h('span', 'Some messages were missed while you were away.'),
    ' ',
    !state.historySupported
      ? null
      : item.loading
        ? h('span', { class: 'muted' }, 'Loading…')
        : h(
            'button',
            { type: 'button', onClick: () => loadGap(conv, item) },
            'Load missed messages',
          ),
  ]);
}

// The conversation's rows: items with date lines, the unread divider, gap rows, and our
// messages not yet acknowledged (a failed one stays after the item it was sent after).
export function rows(conv, pending) {
  const anchored = new Map();
  const keys = new Set(conv.items.map((i) => i.key));
  const tail = [];
  for (const entry of pending) {
    const at = entry.status === 'failed' && (entry.after === '' || keys.has(entry.after));
    if (!at) tail.push(entry);
    else if (anchored.has(entry.after)) anchored.get(entry.after).push(entry);
    else anchored.set(entry.after, [entry]);
  }
  const out = (anchored.get('') || []).map(pendingRow);
  let prev = null;
  let day = null;
  const divider = dividerAbove(conv);
  for (const item of conv.items) {
    if (item.type !== 'gap' && dayOf(item.ts) !== day) {
      day = dayOf(item.ts);
      out.push(dayRow(item.ts));
      prev = null;
    }
    if (item.key === divider) {
      out.push(dividerRow());
      prev = null;
    }
    if (item.type === 'notice') out.push(noticeRow(item));
    else if (item.type === 'gap') out.push(gapRow(conv, item));
    else out.push(messageRow(item, continues(prev, item), conv));
    prev = item;
    const after = anchored.get(item.key);
    if (after) {
      out.push(...after.map(pendingRow));
      prev = null;
    }
  }
  return out.concat(tail.map(pendingRow));
}

// The key of the item "New messages" goes above: after the account's read mark when the
// server told it (the messages of others after it), else the first one counted here.
function dividerAbove(conv) {
  if (conv.dividerAfter === null) return conv.dividerKey;
  const first = conv.items.find(
    (i) => i.type === 'message' && i.epoch === conv.epoch && i.id > conv.dividerAfter && !i.mine,
  );
  return first ? first.key : null;
}

// The quote of the message a reply answers: a button that shows the original (or, deleted,
// a line saying so). Its text is the server's excerpt, shown as plain text.
export function quoteBlock(quote, onJump) {
  if (!quote) return null;
  if (quote.deleted) {
    return h('div', { class: 'quote deleted' }, 'Replying to a deleted message');
  }
  const author = quote.author || 'a message';
  return h(
    'button',
    {
      type: 'button',
      class: 'quote',
      'aria-label': 'Replying to ' + author + ': ' + quote.excerpt + '. Show the message',
      onClick: onJump,
    },
    [
      h('span', { class: 'quote-author' }, quote.author),
      ' ',
      h('span', { class: 'quote-text' }, quote.excerpt),
    ],
  );
}

function messageRow(item, continued, conv) {
  const classes = ['message', { mine: item.mine, 'mentions-me': item.mentionsMe, continued }];
  return h('li', { key: item.key, class: classes, 'data-key': item.key }, [
    state.me
      ? h('div', { class: 'hover-actions' }, [
          h(
            'button',
            {
              type: 'button',
              class: 'reply-action',
              'aria-label': 'Reply to ' + item.username,
              onClick: () => replyTo(conv, item),
            },
            'Reply',
          ),
          // Out of the flow, so a run of messages stays compact: shown on hover or focus.
          ownTools(conv, item),
          conv ? addReaction(conv, item) : null,
          conv ? pickReaction(conv, item, 'React', 'react-action') : null,
          conv ? button('Link', () => copyLink(conv, item), {
            class: 'copy-link-action', 'aria-label': 'Copy a link to the message',
          }) : null,
        ])
      : null,
    continued
      ? h(
          'span',
          { class: 'avatar-space', 'aria-hidden': 'true' },
          timeOfDay.format(new Date(item.ts)),
        )
      : h(Avatar, { name: item.username, url: item.avatar }),
    h('div', { class: 'body' }, [
      h('div', { class: ['meta', { 'sr-only': continued }] }, [
        h('span', { class: 'name' }, item.username),
        // marked on live messages only (history does not keep the mark)
        item.guest ? h('span', { class: 'guest-mark' }, 'guest') : null,
        item.bot ? h('span', { class: 'bot-mark', title: 'Posted by a program' }, 'bot') : null,
        item.mine ? h('span', { class: 'tag' }, 'you') : null,
        timeTag(item.ts),
        messageTools(conv, item), // a moderator's "Remove" (views/rooms.js)
      ]),
      quoteBlock(item.replyTo, () => jumpToOriginal(conv, item.replyTo.id)),
      item.text
        ? h('div', { class: 'text' }, [
            ...richText(item, item.text),
            item.edited
              ? h('span', { class: 'edited-mark', title: 'edited' }, ' (edited)')
              : null,
          ])
        : null,
      messageFiles(item.files),
      reactionRow(conv, item),
    ]),
  ]);
}

// Our own message: edit it in the composer, or delete it.
function ownTools(conv, item) {
  if (!item.mine || !conv) return null;
  return h('span', { class: 'own-tools' }, [
    button('Edit', () => startEditing(conv, item), {
      class: 'edit-message', 'aria-label': 'Edit your message',
    }),
    button('Delete', () => deleteMessage(conv, item.id), {
      class: 'delete-message', 'aria-label': 'Delete your message',
    }),
  ]);
}

// Reactions: each emoji with its count (who reacted in its title); a click adds or takes
// back ours. None: no row at all.
function reactionRow(conv, item) {
  const list = item.reactions || [];
  if (!conv || !list.length) return null;
  const me = state.me !== null ? state.me.username : '';
  return h('div', { class: 'reactions' }, [
    ...list.map((r) =>
      button(r.emoji + ' ' + r.count, () => toggleReaction(conv, item, r.emoji), {
        class: ['reaction', { mine: r.users.includes(me) }],
        title: r.users.join(', '),
        'aria-label': r.emoji + ' ' + r.count + ': ' + r.users.join(', '),
      }),
    ),
    pickReaction(conv, item, '+', 'more-reactions', 'Add a reaction'),
  ]);
}

// "+👍": the commonest reaction, one click away (the hover toolbar's).
function addReaction(conv, item) {
  return button('+👍', () => toggleReaction(conv, item, '👍'), {
    class: 'add-reaction', 'aria-label': 'React with 👍',
  });
}

// A button that opens the emoji picker (views/emojipicker.js); the emoji picked is toggled.
function pickReaction(conv, item, label, cls, name = 'Choose an emoji to react with') {
  const title = 'React to ' + item.username + "'s message";
  return button(label, (e) => openEmojiPicker(e.currentTarget, title, (emoji) =>
    toggleReaction(conv, item, emoji)), {
    class: cls, 'aria-label': name, 'aria-haspopup': 'dialog',
  });
}

function noticeRow(item) {
  return h('li', { key: item.key, class: ['notice', item.tone] }, [
    h('span', item.text),
    ' ',
    timeTag(item.ts),
  ]);
}

function pendingRow(entry) {
  const me = state.me;
  const failed = entry.status === 'failed';
  return h('li', { key: entry.cid, class: ['message', 'mine', 'pending', { failed }] }, [
    h(Avatar, { name: me.username, url: me.avatar }),
    h('div', { class: 'body' }, [
      h('div', { class: 'meta' }, [
        h('span', { class: 'name' }, me.username),
        h('span', { class: 'status' }, failed ? 'Not sent: ' + entry.reason : 'Sending…'),
      ]),
      quoteBlock(entry.replyTo, () => null),
      entry.text ? h('div', { class: 'text' }, richText(entry, entry.text)) : null,
      messageFiles(entry.files),
      failed
        ? h('div', { class: 'actions' }, [
            entry.permanent
              ? h('button', { type: 'button', onClick: () => edit(entry.cid) }, 'Edit')
              : h('button', { type: 'button', onClick: () => retry(entry.cid) }, 'Retry'),
            h('button', { type: 'button', onClick: () => discard(entry.cid) }, 'Discard'),
          ])
        : null,
    ]),
  ]);
}
