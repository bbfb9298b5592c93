// The page's state. `Chat.state` is what the views draw (reactive); `Chat.session` is what
// belongs to the connection and is never drawn. frames.js, outbox.js and actions.js change them.
(function (Chat) {
  'use strict';

  const { reactive, markRaw } = Vue;

  Chat.DEFAULT_ROOM = 'general';
  Chat.ROOM_NAME = /^[a-z0-9_.-]{1,32}$/; // the protocol's rule, checked here to answer at once
  Chat.HISTORY_PAGE = 50;
  Chat.HISTORY_MAX = 200; // the most one `history` request may ask for (docs/protocol.md)

  Chat.state = reactive({
    status: 'connecting', // 'connecting' | 'open' | 'waiting' (closed; a retry is scheduled)
    retryAt: 0, // when 'waiting' ends, in ms
    now: Date.now(), // ticks while 'waiting', for the banner's countdown
    me: null, // {username, avatar} once the server has welcomed us
    form: { username: '', email: '', busy: false, error: null }, // error: {field, text}
    rooms: {}, // room name → conversation
    roomOrder: [], // the joined rooms, as the sidebar lists them
    dms: {}, // lower-cased peer name → conversation
    dmOrder: [],
    current: { kind: 'room', id: Chat.DEFAULT_ROOM },
    outbox: [], // our messages not yet acknowledged by the server, or refused by it
    roomError: '',
    hiddenUnread: 0, // messages that arrived while the tab was hidden, for the title
    historySupported: true, // false once the server answers `history` with unknown_type
    notifications: 'Notification' in window ? Notification.permission : 'unsupported',
    sidebarOpen: false, // the narrow layout's drawer
    // What the server's welcome says it accepts; 0 = not said (an older server): not checked.
    limits: { textChars: 0 },
    drafts: {}, // 'room:name' or 'dm:name' → the composer's unsent text, kept while switching
  });

  Chat.session = {
    conn: null, // the Connection (connection.js)
    serial: 0, // counts sockets, so an outbox entry knows if it went out on this one
    identified: false, // the current socket has had its first welcome
    identity: null, // {username, email, token}: what the next identifying join says
    switchTo: null, // a room to show as soon as its welcome arrives
    liveRooms: new Set(), // rooms the current socket has joined
    requested: new Set(), // rooms whose join is in flight on the current socket
  };

  // A room or a direct conversation.
  function conversation(kind, name) {
    return {
      kind, // 'room' | 'dm'
      name, // the room, or the other person's name
      items: [], // messages and notices, oldest first
      // id → message of the current epoch, for de-duplication. Not reactive: nothing renders it.
      byId: markRaw(new Map()),
      epoch: 0, // see receive() in frames.js
      lastId: 0, // highest id of the current epoch: `since` for a rejoin
      unread: 0,
      mentioned: false,
      avatar: '', // a direct conversation's picture: the other person's
      users: [], // who is in the room, as far as we know: [{username, avatar}]
      count: 0, // how many are in the room (a big room's `users` lists only some of them)
      membersMore: false, // the server has members after `membersAfter` we have not asked for
      membersAfter: '', // the last username of the last page of members (the server's order)
      membersLoading: false,
      typing: {}, // username → ms until which "is typing" shows
      historyLoading: false,
      historyDone: false,
      gapLoading: false, // a page asked for to fill a gap row (see history() in frames.js)
      resumeFrom: 0, // the `since` of the pending rejoin: where a gap would start
      firstUnreadKey: null, // the first message counted in `unread`
      dividerKey: null, // "New messages" is drawn above this item while the room is shown
      sendError: '', // why the server refused the message that went back into the composer
      // Whether the replay after our join is news (a rejoin: what we missed) or just the
      // room's recent past (a first join), which is not counted as unread.
      replayIsNews: false,
    };
  }

  Chat.dmKey = function dmKey(name) {
    return name.toLocaleLowerCase();
  };

  Chat.ensureRoom = function ensureRoom(name) {
    const { state } = Chat;
    if (!state.rooms[name]) state.rooms[name] = conversation('room', name);
    return state.rooms[name];
  };

  Chat.ensureDm = function ensureDm(peer) {
    const { state } = Chat;
    const key = Chat.dmKey(peer);
    if (!state.dms[key]) {
      state.dms[key] = conversation('dm', peer);
      state.dmOrder.push(key);
    }
    return state.dms[key];
  };

  Chat.currentConversation = function currentConversation() {
    const { kind, id } = Chat.state.current;
    return (kind === 'room' ? Chat.state.rooms[id] : Chat.state.dms[id]) || null;
  };

  Chat.isCurrent = function isCurrent(conv) {
    const cur = Chat.currentConversation();
    return cur !== null && cur.kind === conv.kind && cur.name === conv.name;
  };

  Chat.draftKey = function draftKey(conv) {
    return conv.kind + ':' + conv.name;
  };

  // Characters as the server counts them (code points), not UTF-16 units.
  Chat.charCount = function charCount(text) {
    return [...text].length;
  };

  Chat.isMe = function isMe(name) {
    return Chat.state.me !== null && name === Chat.state.me.username;
  };

  Chat.newCid = function newCid() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  };

  Chat.roomFromHash = function roomFromHash() {
    let name = '';
    try {
      name = decodeURIComponent(location.hash.replace(/^#/, '')).trim().toLowerCase();
    } catch (_) {
      return null;
    }
    return Chat.ROOM_NAME.test(name) ? name : null;
  };
})((window.Chat = window.Chat || {}));
