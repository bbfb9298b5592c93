// The sidebar: rooms (join, switch, leave), direct conversations, who is online.
import {
  askNotifications,
  closeDm,
  joinRoom,
  leaveRoom,
  loadMembers,
  openDm,
  show,
} from '../actions.js';
import { currentConversation, state } from '../state/index.js';
import { h, ref } from '../vue.js';
import { Avatar, badge } from './parts.js';
import { RoomsNav } from './rooms.js';
import { NewMessage, presenceDot } from './people.js';

const RoomForm = {
  setup() {
    const name = ref('');
    const submit = (e) => {
      e.preventDefault();
      if (joinRoom(name.value)) name.value = '';
    };
    return () =>
      h('form', { class: 'room-form', onSubmit: submit, novalidate: true }, [
        h(
          'label',
          { for: 'room-name' },
          state.auth.roomsByJoining ? 'Join or create a room' : 'Join a room',
        ),
        h('div', { class: 'inline' }, [
          h('input', {
            id: 'room-name',
            type: 'text',
            placeholder: 'room-name',
            autocomplete: 'off',
            autocapitalize: 'none',
            spellcheck: false,
            value: name.value,
            onInput: (e) => (name.value = e.target.value),
            'aria-invalid': state.roomError ? 'true' : null,
            'aria-describedby': state.roomError ? 'room-name-error' : null,
          }),
          h('button', { type: 'submit' }, 'Join'),
        ]),
        state.roomError
          ? h(
              'p',
              { id: 'room-name-error', class: 'field-error', role: 'alert' },
              state.roomError,
            )
          : null,
      ]);
  },
};

function roomRow(name) {
  const conv = state.rooms[name];
  const active = state.current.kind === 'room' && state.current.id === name;
  return h('li', { key: name, class: { active } }, [
    h(
      'button',
      {
        type: 'button',
        class: 'conv',
        'aria-current': active ? 'page' : null,
        onClick: () => show('room', name),
      },
      [h('span', { class: 'conv-name' }, '#' + name), badge(conv)],
    ),
    // The last room cannot be left: a reconnect needs one room to rejoin in.
    state.roomOrder.length > 1
      ? h(
          'button',
          {
            type: 'button',
            class: 'icon',
            title: 'Leave #' + name,
            'aria-label': 'Leave #' + name,
            onClick: () => leaveRoom(name),
          },
          '×',
        )
      : null,
  ]);
}

function dmRow(key) {
  const conv = state.dms[key];
  const active = state.current.kind === 'dm' && state.current.id === key;
  return h('li', { key, class: { active } }, [
    h(
      'button',
      {
        type: 'button',
        class: 'conv',
        'aria-current': active ? 'page' : null,
        onClick: () => show('dm', key),
      },
      [
        h(Avatar, { name: conv.name, url: conv.avatar }),
        h('span', { class: 'conv-name' }, conv.name),
        presenceDot(conv.name),
        badge(conv),
      ],
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'icon',
        title: 'Close the conversation with ' + conv.name,
        'aria-label': 'Close the conversation with ' + conv.name,
        onClick: () => closeDm(key),
      },
      '×',
    ),
  ]);
}

function personRow(user) {
  const me = state.me && user.username === state.me.username;
  if (me) {
    return h('li', { key: user.username, class: 'person' }, [
      h(Avatar, { name: user.username, url: user.avatar }),
      h('span', { class: 'conv-name' }, user.username),
      h('span', { class: 'muted' }, '(you)'),
    ]);
  }
  return h('li', { key: user.username }, [
    h(
      'button',
      {
        type: 'button',
        class: 'conv person',
        title: 'Send ' + user.username + ' a direct message',
        'aria-label':
          'Direct message ' +
          user.username +
          (user.guest ? ', a guest' : user.bot ? ', a bot' : ''),
        onClick: () => openDm(user.username),
      },
      [
        h(Avatar, { name: user.username, url: user.avatar }),
        h('span', { class: 'conv-name' }, user.username),
        presenceDot(user.username, 'online'),
        // not signed in: anyone may hold this name once its holder leaves
        user.guest ? h('span', { class: 'guest-mark' }, 'guest') : null,
        user.bot ? h('span', { class: 'bot-mark', title: 'A program' }, 'bot') : null,
      ],
    ),
  ]);
}

function onlineCount(room) {
  return Math.max(room.count, room.users.length).toLocaleString();
}

// A big room's presence lists only its first members: the rest load a page at a time.
function moreMembers(room) {
  const unseen = Math.max(0, room.count - room.users.length);
  return h(
    'button',
    {
      type: 'button',
      class: 'more-members',
      disabled: room.membersLoading,
      onClick: () => loadMembers(room),
    },
    room.membersLoading ? 'Loading…' : 'Show more' + (unseen ? ' (' + unseen + ' more)' : ''),
  );
}

export const Sidebar = {
  setup() {
    return () => {
      const conv = currentConversation();
      const room = conv && conv.kind === 'room' ? conv : null;
      return h('aside', { id: 'sidebar', class: 'sidebar', 'aria-label': 'Rooms and people' }, [
        h('nav', { 'aria-label': 'Conversations' }, [
          h('h2', 'Rooms'),
          h('ul', { class: 'conv-list rooms' }, state.roomOrder.map(roomRow)),
          h(RoomForm),
          h(RoomsNav), // browse, create, invitations (views/rooms.js)
          state.dmOrder.length
            ? [
                h('h2', 'Direct messages'),
                h('ul', { class: 'conv-list dms' }, state.dmOrder.map(dmRow)),
              ]
            : null,
          h(NewMessage),
        ]),
        room
          ? h('section', { class: 'people', 'aria-label': 'Online in #' + room.name }, [
              h('h2', 'Online in #' + room.name + ' (' + onlineCount(room) + ')'),
              h('ul', { class: 'conv-list' }, room.users.map(personRow)),
              room.membersMore ? moreMembers(room) : null,
            ])
          : null,
        state.notifications === 'default'
          ? h(
              'button',
              { type: 'button', class: 'notify', onClick: askNotifications },
              'Notify me of mentions and direct messages',
            )
          : null,
      ]);
    };
  },
};
