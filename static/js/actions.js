// The connection's life (open, close, rejoin) and what the views call: join, switch, leave,
// type, load older messages. Frames from the server are handled in frames.js.
(function (Chat) {
  'use strict';

  const { state, session } = Chat;

  // A little over the server's default typing-interval (1 s): notices sent faster are dropped.
  const TYPING_SEND_EVERY_MS = 1200;
  const lastTypingSent = new Map(); // room → ms
  const typingLater = new Map(); // room → timer of the notice held back by the interval

  // ---- joining --------------------------------------------------------------------------------

  Chat.joinFrame = function joinFrame(room, identifying) {
    const frame = { type: 'join', room };
    const { identity } = session;
    if (identifying) {
      frame.username = identity.username;
      if (identity.email) frame.email = identity.email;
      if (identity.token) frame.token = identity.token;
    }
    // On a rejoin, ask only for what we missed; the server replays the messages after it.
    const conv = state.rooms[room];
    if (conv && state.roomOrder.includes(room) && conv.lastId > 0) frame.since = conv.lastId;
    if (conv) conv.replayIsNews = frame.since !== undefined;
    if (conv) conv.resumeFrom = frame.since || 0;
    session.requested.add(room);
    return frame;
  };

  // The first join on a socket identifies it. After a reconnect it carries the token, which
  // makes it the same user even if the server has not yet noticed the old socket is gone.
  Chat.sendIdentifyingJoin = function sendIdentifyingJoin() {
    const cur = state.current;
    let room = Chat.DEFAULT_ROOM;
    if (cur.kind === 'room' && state.roomOrder.includes(cur.id)) room = cur.id;
    else if (state.roomOrder.length > 0) room = state.roomOrder[0];
    session.conn.send(Chat.joinFrame(room, true));
  };

  function forgetSocket() {
    session.identified = false;
    session.liveRooms.clear();
    session.requested.clear();
  }

  function onOpen() {
    session.serial += 1;
    forgetSocket();
    state.status = 'open';
    if (session.identity) Chat.sendIdentifyingJoin();
  }

  function onClose(delayMs) {
    forgetSocket();
    state.status = 'waiting';
    state.retryAt = Date.now() + delayMs;
    state.now = Date.now();
    for (const conv of Object.values(state.rooms)) {
      conv.typing = {};
      conv.historyLoading = false;
      conv.gapLoading = false;
      for (const item of conv.items) if (item.type === 'gap') item.loading = false;
    }
    for (const conv of Object.values(state.dms)) conv.historyLoading = false;
  }

  // ---- what the views call ----------------------------------------------------------------------

  function show(kind, id) {
    const left = Chat.currentConversation();
    if (left) left.dividerKey = null; // what was new there has been seen
    state.current = { kind, id };
    const conv = Chat.currentConversation();
    if (conv) {
      conv.dividerKey = conv.unread > 0 ? conv.firstUnreadKey : null;
      conv.firstUnreadKey = null;
      conv.unread = 0;
      conv.mentioned = false;
    }
    state.sidebarOpen = false;
    // The room in the URL, so a link (or a reload) opens it. replaceState: switching rooms
    // should not fill the back button's history.
    if (kind === 'room' && Chat.roomFromHash() !== id) history.replaceState(null, '', '#' + id);
  }

  function submitJoin() {
    const username = state.form.username.trim();
    const email = state.form.email.trim();
    if (!username) {
      state.form.error = { field: 'username', text: 'Choose a username.' };
      return;
    }
    if (email && !/^[^\s@]+@[^\s@]+$/u.test(email)) {
      state.form.error = { field: 'email', text: 'That does not look like an email address.' };
      return;
    }
    state.form.error = null;
    state.form.busy = true;
    session.identity = { username, email, token: null };
    if (session.conn.isOpen) Chat.sendIdentifyingJoin(); // else onOpen sends it
  }

  function joinRoom(raw) {
    const name = raw.trim().replace(/^#/, '').toLowerCase();
    state.roomError = '';
    if (!Chat.ROOM_NAME.test(name)) {
      state.roomError = 'Room names are 1–32 characters: a–z, 0–9, "-", "_" and ".".';
      return false;
    }
    if (state.roomOrder.includes(name)) {
      show('room', name);
      return true;
    }
    session.switchTo = name; // shown when its welcome arrives
    if (session.identified && !session.requested.has(name)) {
      session.conn.send(Chat.joinFrame(name, false));
    }
    return true;
  }

  function leaveRoom(name) {
    if (state.roomOrder.length <= 1) return; // a rejoin needs a room to identify in
    if (session.liveRooms.has(name)) session.conn.send({ type: 'leave', room: name });
    session.liveRooms.delete(name);
    state.roomOrder.splice(state.roomOrder.indexOf(name), 1);
    Chat.dropOutbox('room', name);
    const wasCurrent = state.current.kind === 'room' && state.current.id === name;
    delete state.rooms[name];
    if (wasCurrent) show('room', state.roomOrder[0]);
  }

  function openDm(peer) {
    if (Chat.isMe(peer)) return;
    const conv = Chat.ensureDm(peer);
    show('dm', Chat.dmKey(peer));
    if (conv.items.length === 0) loadOlder(conv); // earlier messages between the two of us
  }

  function closeDm(key) {
    if (!state.dms[key]) return;
    Chat.dropOutbox('dm', key);
    state.dmOrder.splice(state.dmOrder.indexOf(key), 1);
    const wasCurrent = state.current.kind === 'dm' && state.current.id === key;
    delete state.dms[key];
    if (wasCurrent) show('room', state.roomOrder[0] || Chat.DEFAULT_ROOM);
  }

  // The composer's text changed. Keystrokes within the interval are not lost: one notice goes
  // out when it ends (others clear "is typing" when our message arrives, so typing right after
  // sending must still be announced).
  function typed(room) {
    const cur = state.current;
    room = room || (cur.kind === 'room' ? cur.id : null);
    if (!room || !session.liveRooms.has(room) || typingLater.has(room)) return;
    const wait = (lastTypingSent.get(room) || 0) + TYPING_SEND_EVERY_MS - Date.now();
    if (wait > 0) {
      const timer = setTimeout(() => {
        typingLater.delete(room);
        typed(room);
      }, wait);
      typingLater.set(room, timer);
      return;
    }
    lastTypingSent.set(room, Date.now());
    session.conn.send({ type: 'typing', room });
  }

  // A message was sent: a held-back notice would now claim typing that has ended.
  function stoppedTyping(room) {
    clearTimeout(typingLater.get(room));
    typingLater.delete(room);
  }

  // Asks for the page of messages before the oldest one shown (or, for a direct conversation
  // that shows nothing yet, the latest page).
  function loadOlder(conv) {
    if (!state.historySupported || conv.historyLoading || conv.historyDone) return;
    if (conv.gapLoading) return; // one page at a time: the answer does not say which it was
    if (!session.identified || (conv.kind === 'room' && !session.liveRooms.has(conv.name))) return;
    const frame = { type: 'history', limit: Chat.HISTORY_PAGE };
    if (conv.kind === 'room') frame.room = conv.name;
    else frame.with = conv.name;
    const oldest = conv.items.find((i) => i.type === 'message' && i.epoch === conv.epoch);
    if (oldest && oldest.id <= 1) {
      conv.historyDone = true; // ids start at 1: nothing is older
      return;
    }
    if (oldest) frame.before = oldest.id;
    else if (conv.kind === 'room') return; // a room's latest page comes with the join
    conv.historyLoading = true;
    session.conn.send(frame);
  }

  // Asks for the missed messages just before a gap row's end (the next click asks for more).
  function loadGap(conv, gap) {
    if (!state.historySupported || conv.gapLoading || conv.historyLoading) return;
    if (!session.identified || !session.liveRooms.has(conv.name)) return;
    conv.gapLoading = true;
    gap.loading = true;
    session.conn.send({
      type: 'history',
      room: conv.name,
      before: gap.before,
      limit: Math.min(Chat.HISTORY_MAX, gap.before - gap.after - 1),
    });
  }

  // Keys that work anywhere on the page: Escape closes the drawer (back to its button);
  // Alt+Up and Alt+Down go to the previous and next conversation of the sidebar.
  function onKeydown(e) {
    if (e.key === 'Escape' && state.sidebarOpen) {
      e.preventDefault();
      state.sidebarOpen = false;
      const menu = document.querySelector('.topbar .menu');
      if (menu) menu.focus();
      return;
    }
    const arrow = e.key === 'ArrowUp' ? -1 : e.key === 'ArrowDown' ? 1 : 0;
    if (!arrow || !e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || state.me === null) return;
    const all = [
      ...state.roomOrder.map((id) => ({ kind: 'room', id })),
      ...state.dmOrder.map((id) => ({ kind: 'dm', id })),
    ];
    if (all.length < 2) return;
    e.preventDefault();
    const { kind, id } = state.current;
    const at = all.findIndex((c) => c.kind === kind && c.id === id);
    const next = all[(at + arrow + all.length) % all.length];
    show(next.kind, next.id);
    Vue.nextTick(focusComposer);
  }

  function focusComposer() {
    const composer = document.getElementById('composer-text');
    if (composer) composer.focus();
  }

  // The room's next page of members (a big room's presence lists only the first ones).
  function loadMembers(conv) {
    if (conv.membersLoading || !conv.membersMore || !session.liveRooms.has(conv.name)) return;
    const frame = { type: 'members', room: conv.name };
    if (conv.membersAfter) frame.after = conv.membersAfter;
    conv.membersLoading = true;
    session.conn.send(frame);
  }

  async function askNotifications() {
    if (!('Notification' in window)) return;
    state.notifications = await Notification.requestPermission();
  }

  function start() {
    Chat.ensureRoom(Chat.DEFAULT_ROOM); // before joining, the server sends general's messages
    session.switchTo = Chat.roomFromHash();
    window.addEventListener('hashchange', () => {
      const room = Chat.roomFromHash();
      if (room && state.me) joinRoom(room);
      else if (room) session.switchTo = room;
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      state.hiddenUnread = 0;
      const conv = Chat.currentConversation();
      if (conv) {
        conv.unread = 0;
        conv.firstUnreadKey = null;
        conv.mentioned = false;
      }
    });
    document.addEventListener('keydown', onKeydown);
    setInterval(() => {
      if (state.status === 'waiting') state.now = Date.now();
    }, 1000);
    session.conn = new Chat.Connection(Chat.socketUrl(), {
      onOpen,
      onFrame: Chat.dispatch,
      onClose,
    });
    session.conn.connect();
  }

  Object.assign(Chat, {
    start,
    show,
    submitJoin,
    joinRoom,
    leaveRoom,
    openDm,
    closeDm,
    typed,
    stoppedTyping,
    loadOlder,
    loadGap,
    focusComposer,
    loadMembers,
    askNotifications,
    retryNow: () => session.conn.retryNow(),
  });
})(window.Chat);
