// The conversation: the message list (scrolling, history) and who is typing. Its rows are
// drawn by rows.js, the composer below it by composer.js.
import { loadOlder, readIfSeen } from '../actions.js';
import { jumpDone, pendingFor, setAtBottom, state } from '../state/index.js';
import { h, onBeforeUpdate, onMounted, onUpdated, ref } from '../vue.js';
import { titleOf } from './parts.js';
import { rows } from './rows.js';

const AT_BOTTOM_PX = 48; // this close to the end still counts as "reading the newest"
const LOAD_OLDER_PX = 80; // this close to the top asks for older history
const FLASH_MS = 1600; // how long a message jumped to is highlighted

function hasOlder(conv) {
  const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
  return Boolean(oldest) && oldest.id > 1;
}

export const MessageList = {
  props: { conv: Object },
  setup(props) {
    const box = ref(null);
    const unseen = ref(false); // new messages arrived while the reader was scrolled up
    let shown = null; // the first and last rows of the previous render
    let before = null; // the list's scroll geometry just before this render's DOM patch

    const atBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < AT_BOTTOM_PX;
    // What the reader can see at the end of the list is read (sent as `read`, for accounts).
    const seen = () => {
      const el = box.value;
      if (!el) return;
      setAtBottom(atBottom(el));
      readIfSeen();
    };
    const scrollToBottom = () => {
      if (box.value) box.value.scrollTop = box.value.scrollHeight;
      unseen.value = false;
    };
    // The first and last rows, to tell what an update did: prepended history or new messages.
    const edges = () => {
      const { items } = props.conv;
      const pending = pendingFor(props.conv).filter((e) => e.status !== 'failed');
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
      seen();
      showJumped(el); // back from the search view with a jump under way
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
      seen();
      showJumped(el);
    });

    // A message jumped to (a quote's original, a search result, a link: state/jumps.js) and
    // now in the list: scroll it into the middle and flash it (an animation: no class or
    // style of ours to patch).
    const showJumped = (el) => {
      const conv = props.conv;
      if (!el || conv.jump === null) return;
      const row = el.querySelector('[data-key="' + conv.epoch + ':' + conv.jump + '"]');
      if (!row) return;
      jumpDone(conv);
      row.scrollIntoView({ block: 'center' });
      row.animate([{ backgroundColor: '#fff4d1' }, { backgroundColor: 'transparent' }], FLASH_MS);
    };

    const onScroll = () => {
      const el = box.value;
      if (!el) return; // a scroll event that arrives after the list was replaced
      if (atBottom(el)) unseen.value = false;
      seen();
      if (el.scrollTop < LOAD_OLDER_PX) loadOlder(props.conv);
    };

    return () => {
      const conv = props.conv;
      const pending = pendingFor(conv);
      const showOlder = state.historySupported && !conv.historyDone && hasOlder(conv);
      return h('div', { class: 'messages-wrap' }, [
        h(
          'div',
          {
            ref: box,
            class: 'messages',
            role: 'log',
            'aria-label': 'Messages in ' + titleOf(conv),
            'data-jump': conv.jump, // read here, so a jump's change redraws (and onUpdated runs)
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
                        { type: 'button', onClick: () => loadOlder(conv) },
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

export const TypingLine = {
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
