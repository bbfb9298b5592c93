// Rooms with owners: the open room's header (topic, members, settings, invitations), the
// sidebar's part (browse, create, invitations, why a room went) and a message's "Remove" for
// moderators. The panels these open are in roompanel.js.
import {
  acceptInvite,
  inviteTaken,
  openDirectory,
  openMembers,
  openPanel,
  removeMessage,
  setRoomsNotice,
} from '../rooms.js';
import { canInvite, canModerate, state } from '../state/index.js';
import { h } from '../vue.js';

export function button(label, onClick, attrs) {
  return h('button', Object.assign({ type: 'button', onClick }, attrs), label);
}

export function plural(n, what) {
  return n + ' ' + what + (n === 1 ? '' : 's');
}

function memberCount(conv) {
  return plural(Math.max(conv.count, conv.users.length), 'member');
}

// ---- the header of the open room -------------------------------------------------------------

export const ChannelHeader = {
  props: { conv: Object },
  setup(props) {
    return () => {
      const conv = props.conv;
      const info = state.roomInfo[conv.name] || { topic: '', visibility: 'public' };
      return h('div', { class: 'channel-header' }, [
        h('div', { class: 'channel-what' }, [
          h('h2', { class: 'channel-name' }, [
            '#' + conv.name,
            info.visibility === 'private' ? h('span', { class: 'private-mark' }, 'private') : null,
          ]),
          h(
            'p',
            { class: ['channel-topic', { muted: !info.topic }], title: info.topic || null },
            info.topic || 'No topic',
          ),
        ]),
        h('div', { class: 'channel-tools' }, [
          button(memberCount(conv), () => openMembers(conv.name), {
            class: 'members-button',
            'aria-label': 'Members of #' + conv.name + ': ' + memberCount(conv),
          }),
          canInvite(conv.name) ? button('Invite', () => openPanel('invite')) : null,
          canModerate(conv.name)
            ? button('Settings', () => openPanel('settings'), {
                'aria-label': 'Settings of #' + conv.name,
              })
            : null,
        ]),
      ]);
    };
  },
};

// ---- the sidebar's part ----------------------------------------------------------------------

export const RoomsNav = {
  setup() {
    return () =>
      h('div', { class: 'rooms-nav' }, [
        h('div', { class: 'inline' }, [
          button('Browse rooms', openDirectory),
          state.auth.account ? button('Create room', () => openPanel('create')) : null,
        ]),
        state.roomsNotice
          ? h('p', { class: 'rooms-notice', role: 'status' }, [
              state.roomsNotice,
              ' ',
              button('×', () => setRoomsNotice(''), { class: 'icon', 'aria-label': 'Dismiss' }),
            ])
          : null,
        state.invites.length
          ? h(
              'ul',
              { class: 'invites', 'aria-label': 'Invitations' },
              state.invites.map((i) =>
                h('li', { key: i.room }, [
                  h('span', i.by + ' invited you to #' + i.room),
                  button('Join #' + i.room, () => acceptInvite(i.room)),
                  button('×', () => inviteTaken(i.room), {
                    class: 'icon',
                    'aria-label': 'Decline the invitation to #' + i.room,
                  }),
                ]),
              ),
            )
          : null,
      ]);
  },
};

// ---- a message's tools -----------------------------------------------------------------------

export function messageTools(conv, item) {
  if (!conv || conv.kind !== 'room' || !canModerate(conv.name)) return null;
  return button('Remove', () => removeMessage(conv.name, item.id), {
    class: 'remove-message',
    'aria-label': 'Remove the message of ' + item.username,
  });
}
