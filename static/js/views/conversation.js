// The conversation: the message list (scrolling, history), who is typing, the composer.
(function (Chat) {
  'use strict';

  const { h, ref, onMounted, onBeforeUpdate, onUpdated } = Vue;
  const { state } = Chat;
  const { Avatar, timeOfDay, timeTag, richText, titleOf } = Chat.ui;

  const AT_BOTTOM_PX = 48; // this close to the end still counts as "reading the newest"
  const LOAD_OLDER_PX = 80; // this close to the top asks for older history
  const GROUP_MS = 5 * 60 * 1000; // one sender's messages this close together share a heading
  const COUNT_FROM = 0.9; // the composer shows the length from this share of the limit on
  const number = new Intl.NumberFormat('en'); // as the server's reasons write numbers
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
              { type: 'button', onClick: () => Chat.loadGap(conv, item) },
              'Load missed messages',
            ),
    ]);
  }

  // The conversation's rows: items with date lines, the unread divider, gap rows, and our
  // messages not yet acknowledged (a failed one stays after the item it was sent after).
  function rows(conv, pending) {
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
    for (const item of conv.items) {
      if (item.type !== 'gap' && dayOf(item.ts) !== day) {
        day = dayOf(item.ts);
        out.push(dayRow(item.ts));
        prev = null;
      }
      if (item.key === conv.dividerKey) {
        out.push(dividerRow());
        prev = null;
      }
      if (item.type === 'notice') out.push(noticeRow(item));
      else if (item.type === 'gap') out.push(gapRow(conv, item));
      else out.push(messageRow(item, continues(prev, item)));
      prev = item;
      const after = anchored.get(item.key);
      if (after) {
        out.push(...after.map(pendingRow));
        prev = null;
      }
    }
    return out.concat(tail.map(pendingRow));
  }

  function messageRow(item, continued) {
    const classes = ['message', { mine: item.mine, 'mentions-me': item.mentionsMe, continued }];
    return h('li', { key: item.key, class: classes }, [
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
          item.mine ? h('span', { class: 'tag' }, 'you') : null,
          timeTag(item.ts),
        ]),
        h('p', { class: 'text' }, richText(item, item.text)),
      ]),
    ]);
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
        h('p', { class: 'text' }, richText(entry, entry.text)),
        failed
          ? h('div', { class: 'actions' }, [
              entry.permanent
                ? h('button', { type: 'button', onClick: () => Chat.edit(entry.cid) }, 'Edit')
                : h('button', { type: 'button', onClick: () => Chat.retry(entry.cid) }, 'Retry'),
              h('button', { type: 'button', onClick: () => Chat.discard(entry.cid) }, 'Discard'),
            ])
          : null,
      ]),
    ]);
  }

  function hasOlder(conv) {
    const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
    return Boolean(oldest) && oldest.id > 1;
  }

  const MessageList = {
    props: { conv: Object },
    setup(props) {
      const box = ref(null);
      const unseen = ref(false); // new messages arrived while the reader was scrolled up
      let shown = null; // the first and last rows of the previous render
      let before = null; // the list's scroll geometry just before this render's DOM patch

      const atBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < AT_BOTTOM_PX;
      const scrollToBottom = () => {
        if (box.value) box.value.scrollTop = box.value.scrollHeight;
        unseen.value = false;
      };
      // The first and last rows, to tell what an update did: prepended history or new messages.
      const edges = () => {
        const { items } = props.conv;
        const pending = Chat.pendingFor(props.conv).filter((e) => e.status !== 'failed');
        const last = pending.length ? pending[pending.length - 1] : items[items.length - 1];
        return {
          first: items.length ? items[0].key : null,
          last: last ? last.key || last.cid : null,
          lastMine: Boolean(last && (last.cid || last.mine)),
        };
      };

      onMounted(() => {
        shown = edges();
        // Back in a room with more unread than fits: start at "New messages", not the end.
        const el = box.value;
        const divider = el && el.querySelector('.unread-divider');
        if (divider && divider.offsetTop < el.scrollHeight - el.clientHeight) {
          el.scrollTop = divider.offsetTop - AT_BOTTOM_PX;
        } else scrollToBottom();
      });
      // The state has changed already; the DOM not yet: measure what the reader saw.
      onBeforeUpdate(() => {
        const el = box.value;
        before = el ? { height: el.scrollHeight, top: el.scrollTop, bottom: atBottom(el) } : null;
      });
      onUpdated(() => {
        const el = box.value;
        const now = edges();
        const was = shown;
        shown = now;
        if (!el || !before || !was) return;
        if (now.first !== was.first && now.last === was.last) {
          // Older messages went in above: keep the reader's place instead of jumping.
          el.scrollTop = before.top + (el.scrollHeight - before.height);
        } else if (now.last !== was.last) {
          // Follow new messages only if the reader was at the end (or sent it themselves);
          // otherwise yanking the view away would lose their place.
          if (before.bottom || now.lastMine) scrollToBottom();
          else unseen.value = true;
        }
      });

      const onScroll = () => {
        const el = box.value;
        if (!el) return; // a scroll event that arrives after the list was replaced
        if (atBottom(el)) unseen.value = false;
        if (el.scrollTop < LOAD_OLDER_PX) Chat.loadOlder(props.conv);
      };

      return () => {
        const conv = props.conv;
        const pending = Chat.pendingFor(conv);
        const showOlder = state.historySupported && !conv.historyDone && hasOlder(conv);
        return h('div', { class: 'messages-wrap' }, [
          h(
            'div',
            {
              ref: box,
              class: 'messages',
              role: 'log',
              'aria-label': 'Messages in ' + titleOf(conv),
              tabindex: 0, // scrollable with the keyboard
              onScroll,
            },
            [
              showOlder
                ? h('div', { class: 'older' }, [
                    conv.historyLoading
                      ? h('span', { class: 'muted' }, 'Loading older messages…')
                      : h(
                          'button',
                          { type: 'button', onClick: () => Chat.loadOlder(conv) },
                          'Load older messages',
                        ),
                  ])
                : null,
              conv.items.length || pending.length
                ? null
                : h(
                    'p',
                    { class: 'empty muted' },
                    state.me ? 'No messages yet. Say hello!' : 'No messages yet.',
                  ),
              h('ol', { class: 'message-list' }, rows(conv, pending)),
            ],
          ),
          unseen.value
            ? h(
                'button',
                { type: 'button', class: 'new-marker', onClick: scrollToBottom },
                'New messages ↓',
              )
            : null,
        ]);
      };
    },
  };

  const TypingLine = {
    props: { conv: Object },
    setup(props) {
      return () => {
        const names = Object.keys(props.conv.typing);
        let text = '';
        if (names.length === 1) text = names[0] + ' is typing…';
        else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
        else if (names.length > 2) text = 'Several people are typing…';
        // Always rendered, so the line's space is kept and the composer does not jump.
        return h('div', { class: 'typing', 'aria-live': 'polite' }, text);
      };
    },
  };

  const drafts = state.drafts;

  // The length against the server's limit, once it is close; why a message came back.
  function composerNotes(conv, text) {
    const limit = state.limits.textChars;
    const count = limit ? Chat.charCount(text) : 0;
    const over = count > limit;
    const notes = [];
    const counted = Boolean(limit) && count >= limit * COUNT_FROM;
    if (conv.sendError) {
      notes.push(
        h('p', { id: 'composer-error', class: 'composer-error', role: 'alert' }, conv.sendError),
      );
    }
    if (counted) {
      const what = number.format(count) + ' / ' + number.format(limit);
      const excess = count - limit;
      notes.push(
        h(
          'p',
          { id: 'composer-count', class: ['count', { over }], role: over ? 'alert' : null },
          over
            ? what + ': ' + number.format(excess) + (excess === 1 ? ' character' : ' characters') +
                ' too many'
            : what,
        ),
      );
    }
    return { over, counted, notes };
  }

  const Composer = {
    props: { conv: Object },
    setup(props) {
      const input = ref(null);
      const draftKey = () => Chat.draftKey(props.conv);
      const submit = (e) => {
        e.preventDefault();
        if (Chat.send(drafts[draftKey()] || '')) drafts[draftKey()] = '';
        if (input.value) input.value.focus();
      };
      // Just joined: the join form's button, now gone, had the focus. Typing is next.
      onMounted(() => {
        const active = document.activeElement;
        if ((!active || active === document.body) && input.value) input.value.focus();
      });
      const onKeydown = (e) => {
        // Enter sends, Shift+Enter is a new line; not while an IME is composing a character.
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
      };
      return () => {
        const text = drafts[draftKey()] || '';
        const label = 'Message ' + titleOf(props.conv);
        const { over, counted, notes } = composerNotes(props.conv, text);
        const described = [props.conv.sendError && 'composer-error', counted && 'composer-count']
          .filter(Boolean)
          .join(' ');
        return h('form', { class: 'composer', onSubmit: submit }, [
          notes.length ? h('div', { class: 'composer-notes' }, notes) : null,
          h('label', { for: 'composer-text', class: 'sr-only' }, label),
          h('textarea', {
            id: 'composer-text',
            ref: input,
            rows: 1,
            placeholder: label,
            value: text,
            enterkeyhint: 'send',
            'aria-invalid': over ? 'true' : null,
            'aria-describedby': described || null,
            'aria-keyshortcuts': 'Alt+ArrowUp Alt+ArrowDown',
            onKeydown,
            onInput: (e) => {
              drafts[draftKey()] = e.target.value;
              props.conv.sendError = '';
              if (e.target.value.trim()) Chat.typed();
            },
          }),
          h('button', { type: 'submit', class: 'primary', disabled: !text.trim() || over }, 'Send'),
        ]);
      };
    },
  };

  Object.assign(Chat.ui, { MessageList, TypingLine, Composer });
})(window.Chat);
