// The composer: the text of the next message, its length against the server's limit, and
// why the last one came back.
import { cancelReply, send, typed } from '../actions.js';
import { cancelEditing, finishEditing, lastOwn, startEditing } from '../changes.js';
import { charCount, draftKey } from '../protocol.js';
import { clearSendError, setDraft, state } from '../state/index.js';
import { h, onMounted, ref } from '../vue.js';
import { titleOf } from './parts.js';

const COUNT_FROM = 0.9; // the composer shows the length from this share of the limit on
const number = new Intl.NumberFormat('en'); // as the server's reasons write numbers

// The length against the server's limit, once it is close; why a message came back.
function composerNotes(conv, text) {
  const limit = state.limits.textChars;
  const count = limit ? charCount(text) : 0;
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

export const Composer = {
  props: { conv: Object },
  setup(props) {
    const input = ref(null);
    const draft = () => state.drafts[draftKey(props.conv)] || '';
    const editing = () => state.editing[draftKey(props.conv)];
    const submit = (e) => {
      e.preventDefault();
      if (editing() !== undefined) finishEditing(props.conv, draft());
      else if (send(draft())) setDraft(props.conv, '');
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
      // ↑ in an empty composer edits our last message; Escape gives up an edit.
      else if (e.key === 'ArrowUp' && !e.altKey && !draft() && editing() === undefined) {
        const last = lastOwn(props.conv);
        if (last) {
          e.preventDefault();
          startEditing(props.conv, last);
        }
      } else if (e.key === 'Escape' && editing() !== undefined) {
        e.preventDefault();
        cancelEditing(props.conv);
      } else if (e.key === 'Escape' && props.conv.replyingTo) cancelReply(props.conv);
    };
    return () => {
      const text = draft();
      const label = 'Message ' + titleOf(props.conv);
      const { over, counted, notes } = composerNotes(props.conv, text);
      const replying = props.conv.replyingTo;
      if (editing() !== undefined) {
        notes.unshift(h('p', { class: 'editing-note' }, 'Editing your message (Escape: cancel)'));
      }
      const described = [
        props.conv.sendError && 'composer-error',
        counted && 'composer-count',
        replying && 'composer-reply',
      ]
        .filter(Boolean)
        .join(' ');
      return h('form', { class: 'composer', onSubmit: submit }, [
        notes.length ? h('div', { class: 'composer-notes' }, notes) : null,
        replying
          ? h('div', { class: 'replying', id: 'composer-reply' }, [
              h('span', { class: 'replying-label' }, 'Replying to '),
              h('span', { class: 'quote-author' }, replying.author),
              ' ',
              h('span', { class: 'quote-text' }, replying.excerpt),
              h(
                'button',
                {
                  type: 'button',
                  class: 'cancel-reply',
                  'aria-label': 'Cancel the reply',
                  onClick: () => cancelReply(props.conv),
                },
                '×',
              ),
            ])
          : null,
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
            setDraft(props.conv, e.target.value);
            clearSendError(props.conv);
            if (e.target.value.trim()) typed();
          },
        }),
        h('button', { type: 'submit', class: 'primary', disabled: !text.trim() || over },
          editing() !== undefined ? 'Save' : 'Send'),
      ]);
    };
  },
};
