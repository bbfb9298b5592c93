// The page's frame: top bar, connection banner, join form, and the layout holding the
// sidebar (sidebar.js) and the conversation (conversation.js).
import { retryNow, submitJoin } from '../actions.js';
import { usesGravatar } from '../avatar.js';
import { currentConversation, setFormField, setSidebarOpen, state } from '../state/index.js';
import { h } from '../vue.js';
import { Composer } from './composer.js';
import { MessageList, TypingLine } from './conversation.js';
import { Avatar, field, titleOf } from './parts.js';
import { Sidebar } from './sidebar.js';

// ---- the join form ------------------------------------------------------------------------

const JoinForm = {
  setup() {
    const form = state.form;
    const errorFor = (name) => (form.error && form.error.field === name ? form.error.text : '');
    const input = (id, name, attrs) =>
      h('input', {
        id,
        name,
        value: form[name],
        onInput: (e) => setFormField(name, e.target.value),
        'aria-invalid': errorFor(name) ? 'true' : null,
        'aria-describedby': errorFor(name) ? id + '-error' : null,
        ...attrs,
      });
    return () =>
      h(
        'form',
        {
          class: 'join-form',
          novalidate: true, // the server's reasons, shown beside the field, say more
          onSubmit: (e) => {
            e.preventDefault();
            submitJoin();
          },
        },
        [
          h('h2', 'Join the chat'),
          field(
            'join-username',
            'Username',
            input('join-username', 'username', {
              type: 'text',
              autocomplete: 'username',
              required: true,
              autofocus: true,
            }),
            errorFor('username'),
          ),
          // With drawn avatars (the server's default) an email would serve nothing: not asked.
          usesGravatar
            ? field(
                'join-email',
                'Email (optional, only for your Gravatar picture)',
                input('join-email', 'email', { type: 'email', autocomplete: 'email' }),
                errorFor('email'),
              )
            : null,
          form.error && !form.error.field
            ? h('p', { class: 'field-error', role: 'alert' }, form.error.text)
            : null,
          h(
            'button',
            { type: 'submit', class: 'primary', disabled: form.busy },
            form.busy ? 'Joining…' : 'Join',
          ),
        ],
      );
  },
};

// ---- the frame ----------------------------------------------------------------------------

const Banner = {
  setup() {
    return () => {
      // Nothing while the first connection is being made: it is usually instant.
      if (state.status !== 'waiting') return h('div', { class: 'banner-slot', role: 'status' });
      const seconds = Math.max(0, Math.ceil((state.retryAt - state.now) / 1000));
      return h('div', { class: 'banner-slot', role: 'status' }, [
        h('div', { class: 'banner' }, [
          h(
            'span',
            seconds > 0
              ? 'Connection lost. Reconnecting in ' + seconds + ' s…'
              : 'Connection lost. Reconnecting…',
          ),
          h('button', { type: 'button', onClick: retryNow }, 'Reconnect now'),
        ]),
      ]);
    };
  },
};

const TopBar = {
  setup() {
    return () => {
      const conv = currentConversation();
      const me = state.me;
      return h('header', { class: 'topbar' }, [
        me
          ? h(
              'button',
              {
                type: 'button',
                class: 'menu',
                'aria-label': 'Rooms and people',
                'aria-expanded': String(state.sidebarOpen),
                'aria-controls': 'sidebar',
                onClick: () => setSidebarOpen(!state.sidebarOpen),
              },
              [h('span', { class: 'menu-icon', 'aria-hidden': 'true' }, '☰'), badgeTotal()],
            )
          : null,
        h('h1', 'Simple Chat'),
        conv ? h('span', { class: 'where' }, titleOf(conv)) : null,
        me
          ? h('span', { class: 'whoami' }, [
              h(Avatar, { name: me.username, url: me.avatar }),
              h('span', { class: 'sr-only' }, 'Signed in as '),
              h('span', { class: 'whoami-name' }, me.username),
            ])
          : null,
      ]);
    };
  },
};

// On a narrow screen the sidebar is hidden: the menu button carries the unread total.
function badgeTotal() {
  const all = [...Object.values(state.rooms), ...Object.values(state.dms)];
  const unread = all.reduce((sum, conv) => sum + conv.unread, 0);
  return unread
    ? h('span', { class: 'badge' }, [String(unread), h('span', { class: 'sr-only' }, ' unread')])
    : null;
}

export const App = {
  setup() {
    return () => {
      const conv = currentConversation();
      const joined = state.me !== null;
      return h('div', { class: ['app', { joined, 'sidebar-open': state.sidebarOpen }] }, [
        h(TopBar),
        h(Banner),
        h('div', { class: 'layout' }, [
          joined ? h(Sidebar) : null,
          joined && state.sidebarOpen
            ? h('div', {
                class: 'backdrop',
                'aria-hidden': 'true',
                onClick: () => setSidebarOpen(false),
              })
            : null,
          h('main', { class: 'chat' }, [
            conv
              ? h(MessageList, { conv, key: conv.kind + ':' + conv.name })
              : h('p', { class: 'empty muted' }, 'Join a room to start.'),
            conv ? h(TypingLine, { conv }) : null,
            joined ? (conv ? h(Composer, { conv }) : null) : h(JoinForm),
          ]),
        ]),
      ]);
    };
  },
};
