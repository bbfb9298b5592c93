// Small view pieces shared by the others: avatars, times, message text, badges, fields.
// Every piece of user text reaches the DOM as a text node or an attribute value; nothing in
// the views sets innerHTML.
import { fallbackAvatar, isUsableAvatar } from '../avatar.js';
import { state } from '../state/index.js';
import { LINK_REL, parseMarkdown } from '../markdown.js';
import { h, reactive, toRaw } from '../vue.js';

// Avatar URLs that failed to load, shared so each is tried once per page, not once per message.
const failedAvatars = reactive(new Set());

export const Avatar = {
  props: { name: String, url: String },
  setup(props) {
    return () => {
      const usable = isUsableAvatar(props.url) && !failedAvatars.has(props.url);
      return h('img', {
        class: 'avatar',
        src: usable ? props.url : fallbackAvatar(props.name),
        alt: '', // decorative: the name is always written beside it
        width: 36,
        height: 36,
        referrerpolicy: 'no-referrer', // the room name in our URL is nobody else's business
        onError: () => usable && failedAvatars.add(props.url),
      });
    };
  },
};

export const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

export function timeTag(ts) {
  const date = new Date(ts);
  const today = date.toDateString() === new Date().toDateString();
  return h(
    'time',
    { datetime: date.toISOString(), title: full.format(date) },
    (today ? timeOfDay : dayAndTime).format(date),
  );
}

// Parsing is cached per message and text: the list re-renders often, a text changes only by
// an edit (state/changes.js).
const parsed = new WeakMap();

// A message's text as elements: its Markdown (markdown.js) with links and mentions.
export function richText(item, text) {
  const me = state.me ? state.me.username : null;
  const raw = toRaw(item);
  let cached = parsed.get(raw);
  if (!cached || cached.me !== me || cached.text !== text) {
    cached = { me, text, nodes: parseMarkdown(text, me) };
    parsed.set(raw, cached);
  }
  return cached.nodes.map(vnode);
}

// One node of markdown.js's tree as a vnode; a string child is a text node.
function vnode(node) {
  if (typeof node === 'string') return node;
  if (node.kind === 'link') {
    return h('a', { href: node.href, target: '_blank', rel: LINK_REL }, node.text);
  }
  if (node.kind === 'mention') {
    return h('span', { class: ['mention', { me: node.me }] }, node.text);
  }
  if (node.kind === 'text') return node.text;
  const children = node.children.map(vnode);
  return node.tag ? h(node.tag, node.attrs, children) : children;
}

export function titleOf(conv) {
  return conv.kind === 'room' ? '#' + conv.name : '@' + conv.name;
}

// A labelled input, with its error and a hint under it (the input's aria-describedby names
// them: `id`-error, `id`-hint).
export function field(id, label, input, error, hint) {
  return h('div', { class: 'field' }, [
    h('label', { for: id }, label),
    input,
    hint ? h('p', { id: id + '-hint', class: 'hint muted' }, hint) : null,
    error ? h('p', { id: id + '-error', class: 'field-error', role: 'alert' }, error) : null,
  ]);
}

export function badge(conv) {
  if (!conv.unread) return null;
  const count = h('span', { class: ['badge', { mention: conv.mentioned }] }, [
    String(conv.unread) + (conv.unreadMore ? '+' : ''),
    h('span', { class: 'sr-only' }, conv.mentioned ? ' unread, mentions you' : ' unread'),
  ]);
  if (!conv.mentioned) return count;
  // Mentions get a badge of their own, beside the count (the count's text says it too).
  const times = conv.mentions > 1 ? String(conv.mentions) : '';
  return [
    h('span', { class: 'mention-badge', 'aria-hidden': 'true', title: 'Mentions you' }, [
      '@' + times,
    ]),
    count,
  ];
}
