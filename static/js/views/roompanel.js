// The rooms' panel, over the conversation: the directory (search, Join), a new room, the open
// room's settings, an invitation, and its members with their roles and, for those who may,
// a moderation menu each. What they do is in rooms.js; the server checks every right again.
import {
  closePanel,
  createRoom,
  invite,
  moderate,
  saveSettings,
  searchRooms,
} from '../rooms.js';
import { joinRoom, show } from '../actions.js';
import {
  canGiveRoles,
  canModerate,
  currentConversation,
  roleOf,
  state,
} from '../state/index.js';
import { h, ref } from '../vue.js';
import { Avatar } from './parts.js';
import { button, plural } from './rooms.js';

const ROLE_LABEL = { owner: 'owner', moderator: 'moderator' };

function roleBadge(role) {
  return ROLE_LABEL[role] ? h('span', { class: ['role-badge', role] }, ROLE_LABEL[role]) : null;
}

function textField(id, label, model, attrs) {
  return h('div', { class: 'field' }, [
    h('label', { for: id }, label),
    h(
      'input',
      Object.assign(
        {
          id,
          type: 'text',
          autocomplete: 'off',
          value: model.value,
          onInput: (e) => (model.value = e.target.value),
        },
        attrs,
      ),
    ),
  ]);
}

function visibilityField(id, model) {
  return h('div', { class: 'field' }, [
    h('label', { for: id }, 'Who can join'),
    h(
      'select',
      { id, value: model.value, onChange: (e) => (model.value = e.target.value) },
      [
        h('option', { value: 'public' }, 'Public: anyone, listed in the directory'),
        h('option', { value: 'private' }, 'Private: invited members only'),
      ],
    ),
  ]);
}

const Directory = {
  setup() {
    const query = ref('');
    return () => {
      const d = state.directory;
      return h('div', { class: 'directory' }, [
        h(
          'form',
          {
            role: 'search',
            onSubmit: (e) => {
              e.preventDefault();
              searchRooms(query.value, false);
            },
          },
          [
            textField('directory-search', 'Search rooms', query, {
              type: 'search',
              placeholder: 'name starts with…',
              onInput: (e) => {
                query.value = e.target.value;
                searchRooms(query.value, false);
              },
            }),
          ],
        ),
        h(
          'ul',
          { class: 'directory-list' },
          d.list.map((r) =>
            h('li', { key: r.room, class: 'directory-room' }, [
              h('div', [
                h('span', { class: 'conv-name' }, '#' + r.room),
                h('span', { class: 'muted' }, ' · ' + plural(r.members, 'member')),
                r.topic ? h('p', { class: 'directory-topic' }, r.topic) : null,
              ]),
              state.roomOrder.includes(r.room)
                ? button('Open', () => (closePanel(), show('room', r.room)), {
                    'aria-label': 'Open #' + r.room,
                  })
                : button('Join', () => (closePanel(), joinRoom(r.room)), {
                    'aria-label': 'Join #' + r.room,
                  }),
            ]),
          ),
        ),
        !d.loading && d.list.length === 0
          ? h('p', { class: 'muted' }, 'No public rooms found.')
          : null,
        d.more ? button('More rooms', () => searchRooms(d.prefix, true)) : null,
      ]);
    };
  },
};

const CreateRoom = {
  setup() {
    const name = ref('');
    const topic = ref('');
    const visibility = ref('public');
    return () =>
      h(
        'form',
        {
          class: 'create-room',
          onSubmit: (e) => {
            e.preventDefault();
            createRoom(name.value, topic.value, visibility.value);
          },
        },
        [
          textField('create-room-name', 'Room name', name, {
            placeholder: 'room-name',
            autocapitalize: 'none',
            spellcheck: false,
          }),
          textField('create-room-topic', 'Topic (optional)', topic, { maxlength: 250 }),
          visibilityField('create-room-visibility', visibility),
          h('button', { type: 'submit', disabled: state.roomPanel.busy }, 'Create'),
        ],
      );
  },
};

const Settings = {
  props: { room: String },
  setup(props) {
    const info = state.roomInfo[props.room] || {};
    const topic = ref(info.topic || '');
    const visibility = ref(info.visibility || 'public');
    return () =>
      h(
        'form',
        {
          class: 'room-settings',
          onSubmit: (e) => {
            e.preventDefault();
            saveSettings(props.room, topic.value, visibility.value);
          },
        },
        [
          textField('room-topic', 'Topic', topic, { maxlength: 250 }),
          visibilityField('room-visibility', visibility),
          h('button', { type: 'submit', disabled: state.roomPanel.busy }, 'Save'),
        ],
      );
  },
};

const Invite = {
  props: { room: String },
  setup(props) {
    const user = ref('');
    return () =>
      h(
        'form',
        {
          class: 'invite',
          onSubmit: (e) => {
            e.preventDefault();
            invite(props.room, user.value);
          },
        },
        [
          textField('invite-user', 'Username to invite', user, {
            autocapitalize: 'none',
            spellcheck: false,
          }),
          h('button', { type: 'submit', disabled: state.roomPanel.busy }, 'Invite'),
        ],
      );
  },
};

// One member's moderation menu: what our rank may do (the server checks it, and whom).
const MemberMenu = {
  props: { room: String, user: String },
  setup(props) {
    const minutes = ref('');
    const id = 'minutes-' + props.user;
    const mins = () => {
      const n = Number.parseInt(minutes.value, 10);
      return Number.isInteger(n) && n > 0 ? n : null;
    };
    return () => {
      const { room, user } = props;
      const act = (action, extra) => () => moderate(action, room, user, extra);
      const timed = (action) => () => {
        const n = mins();
        moderate(action, room, user, n === null ? {} : { minutes: n });
      };
      return h('details', { class: 'member-menu' }, [
        h('summary', { 'aria-label': 'Moderate ' + user, title: 'Moderate ' + user }, '⋯'),
        h('div', { class: 'member-menu-items' }, [
          h('div', { class: 'field' }, [
            h('label', { for: id }, 'Minutes (ban: empty = until lifted)'),
            h('input', {
              id,
              type: 'number',
              min: 1,
              value: minutes.value,
              onInput: (e) => (minutes.value = e.target.value),
            }),
          ]),
          button('Kick', act('kick')),
          button('Ban', timed('ban')),
          button('Unban', act('unban')),
          button('Mute', () => moderate('mute', room, user, { minutes: mins() || 10 })),
          button('Unmute', act('mute', { minutes: 0 })),
          canGiveRoles(room)
            ? [
                button('Make moderator', act('role', { role: 'moderator' })),
                button('Make member', act('role', { role: 'member' })),
                button('Make owner', act('role', { role: 'owner' })),
              ]
            : null,
        ]),
      ]);
    };
  },
};

function memberRow(room, u) {
  const me = state.me && u.username === state.me.username;
  return h('li', { key: u.username, class: 'member' }, [
    h(Avatar, { name: u.username, url: u.avatar }),
    h('span', { class: 'conv-name' }, u.username),
    me ? h('span', { class: 'muted' }, '(you)') : null,
    u.guest ? h('span', { class: 'guest-mark' }, 'guest') : null,
    u.bot ? h('span', { class: 'bot-mark', title: 'A program' }, 'bot') : null,
    roleBadge(roleOf(room, u.username)),
    !me && canModerate(room) ? h(MemberMenu, { room, user: u.username }) : null,
  ]);
}

const Members = {
  props: { room: String },
  setup(props) {
    return () => {
      const conv = state.rooms[props.room];
      if (!conv) return null;
      const rows = conv.users.map((u) => memberRow(props.room, u));
      return h('ul', { class: 'members-list conv-list' }, rows);
    };
  },
};

const TITLES = {
  directory: () => 'Room directory',
  create: () => 'Create a room',
  settings: (room) => 'Settings of #' + room,
  invite: (room) => 'Invite to #' + room,
  members: (room) => 'Members of #' + room,
};

export const RoomPanel = {
  setup() {
    return () => {
      const { kind, error, status } = state.roomPanel;
      if (!kind) return null;
      const conv = currentConversation();
      const room = conv && conv.kind === 'room' ? conv.name : '';
      if (!room && kind !== 'directory' && kind !== 'create') return null;
      const title = TITLES[kind](room);
      const body = {
        directory: () => h(Directory),
        create: () => h(CreateRoom),
        settings: () => h(Settings, { room, key: room }),
        invite: () => h(Invite, { room, key: room }),
        members: () => h(Members, { room }),
      }[kind]();
      return h('section', { class: 'room-panel', role: 'dialog', 'aria-label': title }, [
        h('div', { class: 'room-panel-head' }, [
          h('h2', title),
          button('×', closePanel, { class: 'icon', 'aria-label': 'Close' }),
        ]),
        body,
        error ? h('p', { class: 'field-error', role: 'alert' }, error) : null,
        status ? h('p', { class: 'panel-status', role: 'status' }, status) : null,
      ]);
    };
  },
};
