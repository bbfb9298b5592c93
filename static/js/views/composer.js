// The composer: the text of the next message, its length against the server's limit, and
// why the last one came back.
import { cancelReply, send, typed } from '../actions.js';
import { cancelEditing, finishEditing, lastOwn, startEditing } from '../changes.js';
import { attach, canAttach, clear, ready, uploadChips } from '../files.js';
import { charCount, draftKey } from '../protocol.js';
import { clearSendError, setDraft, state } from '../state/index.js';
import { h, nextTick, onMounted, ref } from '../vue.js';
import { openEmojiPicker } from './emojipicker.js';
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

// The emoji picker (views/emojipicker.js) for the composer: the emoji goes where the cursor
// was (over the selection), and the cursor after it.
function insertEmoji(button, conv, textarea) {
  if (!textarea) return;
  const start = textarea.selectionStart;
  const end = textarea.selectionEnd;
  openEmojiPicker(button, 'Insert an emoji', (char) => {
    const text = state.drafts[draftKey(conv)] || '';
    setDraft(conv, text.slice(0, start) + char + text.slice(end));
    nextTick(() => {
      textarea.focus();
      textarea.setSelectionRange(start + char.length, start + char.length);
    });
  });
}

export const Composer = {
  props: { conv: Object },
  setup(props) {
    const input = ref(null);
    const draft = () => state.drafts[draftKey(props.conv)] || '';
    const editing = () => state.editing[draftKey(props.conv)];
    const picker = ref(null);
    const dragging = ref(false);
    const submit = (e) => {
      e.preventDefault();
      if (editing() !== undefined) {
        finishEditing(props.conv, draft());
      } else {
        const { files, busy } = ready(props.conv);
        if (busy) return; // the Send button says so: wait for the uploads
        if (send(draft(), files)) {
          setDraft(props.conv, '');
          clear(props.conv);
        }
      }
      if (input.value) input.value.focus();
    };
    // Files from the picker, a drop or the clipboard start uploading at once.
    const take = (list) => {
      if (list && list.length) attach(props.conv, Array.from(list));
    };
    const onDragover = (e) => {
      if (!canAttach() || !e.dataTransfer || !e.dataTransfer.types.includes('Files')) return;
      e.preventDefault();
      dragging.value = true;
    };
    const onDrop = (e) => {
      dragging.value = false;
      if (!canAttach() || !e.dataTransfer || !e.dataTransfer.files.length) return;
      e.preventDefault();
      take(e.dataTransfer.files);
    };
    const onPaste = (e) => {
      const files = e.clipboardData ? e.clipboardData.files : null;
      if (!canAttach() || !files || !files.length) return;
      e.preventDefault(); // a pasted screenshot is a file, not text
      take(files);
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
      const { files, busy } = ready(props.conv);
      return h('form', { class: ['composer', { dragging: dragging.value }], onSubmit: submit,
        onDragover, onDragleave: () => { dragging.value = false; }, onDrop }, [
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
        uploadChips(props.conv),
        canAttach()
          ? h('button', { type: 'button', class: 'attach', 'aria-label': 'Attach files',
              title: 'Attach files (or drop or paste them here)',
              onClick: () => picker.value && picker.value.click() }, '+')
          : null,
        canAttach()
          ? h('input', { type: 'file', multiple: true, ref: picker, class: 'sr-only',
              tabindex: '-1', 'aria-hidden': 'true', 'aria-label': 'Files to attach',
              onChange: (e) => { take(e.target.files); e.target.value = ''; } })
          : null,
        h('button', { type: 'button', class: 'insert-emoji', 'aria-label': 'Insert an emoji',
          'aria-haspopup': 'dialog', title: 'Insert an emoji',
          onClick: (e) => insertEmoji(e.currentTarget, props.conv, input.value) }, '😀'),
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
          onPaste,
          onInput: (e) => {
            setDraft(props.conv, e.target.value);
            clearSendError(props.conv);
            if (e.target.value.trim()) typed();
          },
        }),
        h('button', { type: 'submit', class: 'primary', title: busy ? 'Waiting for uploads' : null,
          disabled: (!text.trim() && !files.length) || over || busy },
          editing() !== undefined ? 'Save' : 'Send'),
      ]);
    };
  },
};
