// The page's frame: top bar, connection banner, the way in (entry.js), the account dialog
// (account.js), and the layout holding the sidebar (sidebar.js) and the conversation
// (conversation.js).
import { Lightbox } from '../files.js';
import { openAccount, retryNow } from '../actions.js';
import { currentConversation, setSidebarOpen, state } from '../state/index.js';
import { h } from '../vue.js';
import { AccountDialog } from './account.js';
import { Composer } from './composer.js';
import { MessageList, TypingLine } from './conversation.js';
import { EntryForm } from './entry.js';
import { Avatar, titleOf } from './parts.js';
import { RoomPanel } from './roompanel.js';
import { SearchButton, SearchView, jumpNotice, linkLine } from './search.js';
import { ChannelHeader } from './rooms.js';
import { Sidebar } from './sidebar.js';
import { DmHeader } from './people.js';

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
        me ? h(SearchButton) : null,
        me ? whoami(me) : null,
      ]);
    };
  },
};

// Who we are; signed in, a button that opens the account dialog (sign out, sessions).
function whoami(me) {
  const picture = h(Avatar, { name: me.username, url: me.avatar });
  const name = h('span', { class: 'whoami-name' }, me.username);
  if (!state.auth.account) {
    return h('span', { class: 'whoami' }, [
      picture,
      h('span', { class: 'sr-only' }, 'Joined as a guest: '),
      name,
      h('span', { class: 'guest-mark', title: 'Not signed in' }, 'guest'),
    ]);
  }
  return h(
    'button',
    {
      type: 'button',
      class: 'whoami',
      'aria-haspopup': 'dialog',
      'aria-expanded': String(state.sessions.open),
      onClick: openAccount,
    },
    [picture, h('span', { class: 'sr-only' }, 'Your account: signed in as '), name],
  );
}

// What the main column shows below the conversation: the composer once joined, else the way
// in; nothing while the page asks whether it is signed in (usually a blink), and a line while
// a signed-in page's socket joins.
function bottom(conv) {
  if (state.me !== null) return conv ? h(Composer, { conv }) : null;
  if (state.auth.phase === 'checking') return h('p', { class: 'entry-wait', role: 'status' });
  if (state.auth.phase === 'in') {
    return h('p', { class: 'entry-wait muted', role: 'status' }, 'Signing in…');
  }
  return h(EntryForm);
}

// On a narrow screen the sidebar is hidden: the menu button carries the unread total.
function badgeTotal() {
  const all = [...Object.values(state.rooms), ...Object.values(state.dms)];
  const unread = all.reduce((sum, conv) => sum + conv.unread, 0);
  return unread
    ? h('span', { class: 'badge' }, [String(unread), h('span', { class: 'sr-only' }, ' unread')])
    : null;
}

// The conversation's messages, who is typing, and the composer (or the way in).
function conversation(conv) {
  return [
    conv
      ? h(MessageList, { conv, key: conv.kind + ':' + conv.name })
      : h('p', { class: 'empty muted' }, 'Join a room to start.'),
    conv ? h(TypingLine, { conv }) : null,
    bottom(conv),
  ];
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
            joined && conv && conv.kind === 'room' ? h(ChannelHeader, { conv }) : null,
            joined ? h(RoomPanel) : null,
            conv && conv.kind === 'dm' ? h(DmHeader, { conv, key: 'dm:' + conv.name }) : null,
            jumpNotice(),
            linkLine(),
            ...(joined && state.search.open ? [h(SearchView)] : conversation(conv)),
          ]),
        ]),
        joined && state.sessions.open ? h(AccountDialog) : null,
        h(Lightbox),
      ]);
    };
  },
};
