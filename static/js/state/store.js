// The page's state, writable. Only the modules of this folder import this one: the rest of the
// page reads the state read-only from state/index.js and changes it through the verbs there.
import { DEFAULT_ROOM, dmKey } from '../protocol.js';
import { markRaw, reactive } from '../vue.js';

// What the server's settings make of the entry form (templates/index.html's meta tags).
function setting(name) {
  return document.querySelector(`meta[name="chat-${name}"]`)?.content ?? '';
}

// What the views draw.
export const state = reactive({
  status: 'connecting', // 'connecting' | 'open' | 'waiting' (closed; a retry is scheduled)
  retryAt: 0, // when 'waiting' ends, in ms
  now: Date.now(), // ticks while 'waiting', for the banner's countdown
  me: null, // {username, avatar, guest} once the server has welcomed us
  // The entry form: sign in, create an account, or join as a guest (`mode`). error:
  // {field, text}; retryUntil: when a throttled sign-in may be tried again, in ms.
  form: {
    mode: 'signin', // 'signin' | 'register' | 'guest'
    username: '',
    email: '',
    password: '',
    invite: '',
    inviteAsked: setting('registration') === 'invite', // creating an account takes a code
    busy: false,
    error: null,
    retryUntil: 0,
    retryAfter: 0, // the wait the server asked for, in s
  },
  auth: {
    phase: 'checking', // 'checking' (asking GET /me) | 'out' | 'in'
    accounts: true, // false: the server has no accounts API; only guests join
    guests: setting('guests') !== 'off', // false: the server takes no guests (--guests off)
    // --room-creation join: joining a new name makes the room (else only "Create room" does)
    roomsByJoining: setting('room-creation') === 'join',
    registration: setting('registration') || 'open', // 'closed': no "create an account"
    account: null, // {id, username, role} while signed in
    notice: '', // why the sign-in form is back: the session ended while the page was open
  },
  // The account dialog: the signed-in sessions of this account (GET /api/v1/sessions).
  sessions: { open: false, list: [], current: '', loading: false, error: '' },
  // The account dialog's passkeys (GET /api/v1/passkeys); `notice`: what the last change did.
  passkeys: { list: [], loading: false, busy: false, error: '', notice: '' },
  rooms: {}, // room name → conversation
  roomOrder: [], // the joined rooms, as the sidebar lists them
  dms: {}, // lower-cased peer name → conversation
  dmOrder: [],
  current: { kind: 'room', id: DEFAULT_ROOM },
  outbox: [], // our messages not yet acknowledged by the server, or refused by it
  roomError: '',
  hiddenUnread: 0, // messages that arrived while the tab was hidden, for the title
  historySupported: true, // false once the server answers `history` with unknown_type
  notifications: 'Notification' in window ? Notification.permission : 'unsupported',
  sidebarOpen: false, // the narrow layout's drawer
  // What the server's welcome says it accepts; 0 = not said (an older server): not checked.
  limits: { textChars: 0 },
  drafts: {}, // 'room:name' or 'dm:name' → the composer's unsent text, kept while switching
  editing: {}, // 'room:name' or 'dm:name' → the id of our message its composer is editing
  // Rooms' settings and roles (docs/protocol.md "Rooms: owners, privacy and moderation"),
  // the directory, invitations and the rooms' panels: see state/rooms.js.
  roomInfo: {}, // room name → {topic, visibility, role (ours), roles: {username → role}}
  roomPanel: { kind: '', error: '', status: '', busy: false }, // the open panel, its outcome
  directory: { prefix: '', list: [], more: false, loading: false },
  invites: [], // [{room, by}]: invitations not yet taken up
  roomsNotice: '', // why a room went from the sidebar (kicked, banned, left elsewhere)
  // What the page knows of people (lower-cased name → {username, state, lastSeen}): state is
  // 'online', 'away' or 'offline' (see state/people.js); lastSeen in ms, 0 if not told.
  people: {},
  // The search view (state/search.js): the form, what was asked, the results shown.
  search: {
    open: false,
    form: { query: '', where: '', from: '', after: '', before: '' },
    asked: null, // {query, frame}: the first page's question, for the next pages
    loading: false,
    done: false, // an answer came for `asked`
    results: [], // [{key, id, kind, name, username, avatar, guest, ts, excerpt}]
    more: false,
    nextOffset: 0,
    error: '', // why the last search got nothing: refused, rate limited, disconnected
  },
  // Why a jump to a message (a search result, a link, a quote) could not be made (jumps.js).
  jumpNotice: '',
  // The link last copied (views/search.js): {url, copied}; copied false: the field to copy.
  copiedLink: null,
});

// What belongs to the connection and is never drawn.
export const session = {
  conn: null, // the Connection (connection.js)
  serial: 0, // counts sockets, so an outbox entry knows if it went out on this one
  identified: false, // the current socket has had its first welcome
  identity: null, // {username, email, token, account}: what the next identifying join says
  checked: false, // GET /me has answered since the page loaded (else: ask when the socket opens)
  verified: false, // the account's session is known to be alive for the current socket
  // The account whose session ended while the page was open: its drafts and conversations are
  // kept for it to sign in again; another account signing in gets a fresh page.
  endedAccount: null,
  switchTo: null, // a room to show as soon as its welcome arrives
  liveRooms: new Set(), // rooms the current socket has joined
  requested: new Set(), // rooms whose join is in flight on the current socket
  atBottom: true, // the message list shown is scrolled to its end: what arrives is seen
  // A message to jump to once its conversation can be shown (a link opened before sign-in,
  // a search result in a room not joined yet): {kind, name, id} (state/jumps.js).
  jumpLater: null,
};

// A room or a direct conversation.
function conversation(kind, name) {
  return {
    kind, // 'room' | 'dm'
    name, // the room, or the other person's name
    items: [], // messages and notices, oldest first
    // id → message of the current epoch, for de-duplication. Not reactive: nothing renders it.
    byId: markRaw(new Map()),
    epoch: 0, // see receive() in messages.js
    lastId: 0, // highest id of the current epoch: `since` for a rejoin
    unread: 0,
    mentioned: false,
    avatar: '', // a direct conversation's picture: the other person's
    users: [], // who is in the room, as far as we know: [{username, avatar, guest}]
    count: 0, // how many are in the room (a big room's `users` lists only some of them)
    membersMore: false, // the server has members after `membersAfter` we have not asked for
    membersAfter: '', // the last username of the last page of members (the server's order)
    membersLoading: false,
    // Who was listed before this page reconnected: their joins until `returningUntil` (ms) are
    // a return, not news (see presence() in members.js). Not reactive: nothing renders it.
    returning: null,
    returningUntil: 0,
    typing: {}, // username → ms until which "is typing" shows
    historyLoading: false,
    historyDone: false,
    gapLoading: false, // a page asked for to fill a gap row (see history() in messages.js)
    resumeFrom: 0, // the `since` of the pending rejoin: where a gap would start
    firstUnreadKey: null, // the first message counted in `unread`
    dividerKey: null, // "New messages" is drawn above this item while the room is shown
    sendError: '', // why the server refused the message that went back into the composer
    // The account's read state (state/people.js): the server's mark, whether the server told
    // it, the last id we sent as read, the mentions among `unread`, and the mark the "New
    // messages" line is drawn after while the conversation is shown (null: none).
    readMark: 0,
    readKnown: false,
    readSent: 0,
    unreadMore: false,
    mentions: 0,
    dividerAfter: null,
    // Whether the replay after our join is news (a rejoin: what we missed) or just the
    // room's recent past (a first join), which is not counted as unread.
    replayIsNews: false,
    replyingTo: null, // the message the composer answers: {id, author, excerpt} (replies.js)
    jump: null, // the id of a message the list is to scroll to once loaded (state/jumps.js)
  };
}

export function ensureRoom(name) {
  if (!state.rooms[name]) state.rooms[name] = conversation('room', name);
  return state.rooms[name];
}

export function ensureDm(peer) {
  const key = dmKey(peer);
  if (!state.dms[key]) {
    state.dms[key] = conversation('dm', peer);
    state.dmOrder.push(key);
  }
  return state.dms[key];
}

// The writable conversation for one the views hold (read-only) or for its kind and name.
export function own(conv) {
  return conv.kind === 'room' ? roomNamed(conv.name) : state.dms[dmKey(conv.name)] || null;
}

export function roomNamed(name) {
  return typeof name === 'string' ? state.rooms[name] || null : null;
}

export function currentConversation() {
  const { kind, id } = state.current;
  return (kind === 'room' ? state.rooms[id] : state.dms[id]) || null;
}

export function isCurrent(conv) {
  const cur = currentConversation();
  return cur !== null && cur.kind === conv.kind && cur.name === conv.name;
}

export function isMe(name) {
  return state.me !== null && name === state.me.username;
}
