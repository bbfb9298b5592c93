// What each frame from the server changes (docs/protocol.md, "Server → client").
(function (Chat) {
  'use strict';

  const { state, session } = Chat;

  const TYPING_SHOWN_MS = 4000; // "x is typing…" lasts this long after their last notice
  const BROKER_RETRY_MS = 2000; // a join refused with broker_down is sent again after this
  // Notice lines a conversation keeps: churn must not bury the messages (the oldest go first).
  Chat.MAX_NOTICE_LINES = 50;
  const NAMES_SHOWN = 3; // in one folded line: "a, b, c and 4 others joined"

  function addNotice(conv, text, tone, extra) {
    const notices = conv.items.filter((i) => i.type === 'notice');
    if (notices.length >= Chat.MAX_NOTICE_LINES) {
      conv.items.splice(conv.items.indexOf(notices[0]), 1);
    }
    const item = { key: 'n' + Chat.newCid(), type: 'notice', tone: tone || 'info', text };
    conv.items.push(Object.assign(item, { ts: Date.now() }, extra));
    return conv.items[conv.items.length - 1];
  }

  function nameList(names) {
    if (names.length <= NAMES_SHOWN) {
      return names.length > 1 ? names.slice(0, -1).join(', ') + ' and ' + names.at(-1) : names[0];
    }
    const others = names.length - NAMES_SHOWN + 1;
    return names.slice(0, NAMES_SHOWN - 1).join(', ') + ' and ' + others + ' others';
  }

  // Joins and leaves that follow one another fold into one line: each name under its latest
  // change ("bob left" once bob came and went), so churn adds one line between two messages.
  function presenceNotice(conv, kind, name) {
    let line = conv.items.at(-1);
    if (!line || !line.churn) line = null;
    const churn = line ? line.churn : { joined: [], left: [] };
    const same = kind === 'join' ? churn.joined : churn.left;
    const opposite = kind === 'join' ? churn.left : churn.joined;
    if (opposite.includes(name)) opposite.splice(opposite.indexOf(name), 1);
    if (!same.includes(name)) same.push(name);
    const parts = [];
    if (churn.joined.length) parts.push(nameList(churn.joined) + ' joined');
    if (churn.left.length) parts.push(nameList(churn.left) + ' left');
    if (!line) line = addNotice(conv, '', 'info', { churn });
    line.text = parts.join('; ') + ' #' + conv.name;
    line.ts = Date.now();
  }

  function mergeMembers(conv, users) {
    const known = new Set(conv.users.map((u) => u.username));
    for (const u of users) {
      if (u && typeof u.username === 'string' && !known.has(u.username)) {
        known.add(u.username);
        conv.users.push({ username: u.username, avatar: u.avatar });
      }
    }
    conv.users.sort((a, b) => a.username.localeCompare(b.username));
  }

  // A `presence` or `members` page: its count, and where the next page starts.
  function memberPage(conv, f, users) {
    conv.count = Number.isInteger(f.count) ? f.count : conv.users.length;
    conv.membersMore = f.more === true;
    const last = users.length ? users[users.length - 1] : null;
    if (last && typeof last.username === 'string') conv.membersAfter = last.username;
    conv.membersLoading = false;
  }

  function insertInOrder(conv, item) {
    if (item.id > conv.lastId) {
      conv.items.push(item);
      return;
    }
    // An older message (history, or a replay arriving out of order): before the first newer one.
    const at = conv.items.findIndex(
      (i) => i.type === 'message' && i.epoch === item.epoch && i.id > item.id,
    );
    conv.items.splice(at < 0 ? conv.items.length : at, 0, item);
  }

  // Adds one message to a conversation unless it is already there (by id). `news` is false
  // for history that is not new to the reader, which is never counted as unread.
  function receive(conv, m, news) {
    if (!Number.isInteger(m.id) || typeof m.text !== 'string' || typeof m.username !== 'string') {
      return;
    }
    const mine = Chat.isMe(m.username);
    if (mine && typeof m.cid === 'string') Chat.settle(m.cid);
    const known = conv.byId.get(m.id);
    if (known) {
      if (known.ts === m.ts && known.username === m.username) return; // a replay we already have
      // The same id for another message: the server's ids started again (it restarted without
      // its history). A new epoch keeps the new messages from being dropped as duplicates or
      // sorted in among the old ones.
      conv.epoch += 1;
      conv.byId.clear();
      conv.lastId = 0;
    }
    const item = {
      key: conv.epoch + ':' + m.id,
      type: 'message',
      epoch: conv.epoch,
      id: m.id,
      username: m.username,
      avatar: typeof m.avatar === 'string' ? m.avatar : '',
      text: m.text,
      ts: Number.isFinite(m.ts) ? m.ts : Date.now(),
      mine,
      mentionsMe: !mine && state.me !== null && Chat.mentions(m.text, state.me.username),
    };
    const isNewest = m.id > conv.lastId;
    insertInOrder(conv, item);
    conv.byId.set(m.id, item);
    if (isNewest) conv.lastId = m.id;
    delete conv.typing[m.username];
    if (news && isNewest && !mine && state.me !== null) countUnread(conv, item);
  }

  function countUnread(conv, item) {
    if (!Chat.isCurrent(conv)) {
      if (conv.unread === 0) conv.firstUnreadKey = item.key; // where "New messages" will go
      conv.unread += 1;
      if (item.mentionsMe) conv.mentioned = true;
    }
    if (document.hidden) {
      state.hiddenUnread += 1;
      if (conv.kind === 'dm' || item.mentionsMe) notify(conv, item);
    }
  }

  function notify(conv, item) {
    if (state.notifications !== 'granted') return;
    const title =
      conv.kind === 'dm'
        ? item.username + ' (direct message)'
        : item.username + ' in #' + conv.name;
    // The Notification API shows its strings as text, like the rest of the page.
    const note = new Notification(title, {
      body: item.text.slice(0, 200),
      tag: conv.kind + ':' + conv.name,
    });
    note.onclick = () => {
      window.focus();
      Chat.show(conv.kind, conv.kind === 'room' ? conv.name : Chat.dmKey(conv.name));
      note.close();
    };
  }

  // One shape for `message` and `dm` frames and the entries of a `history` frame.
  function fromServer(m) {
    return {
      id: m.id,
      username: typeof m.from === 'string' ? m.from : m.username,
      avatar: m.avatar,
      text: typeof m.message === 'string' ? m.message : m.text,
      ts: m.ts,
      cid: m.cid,
    };
  }

  function roomOf(f) {
    return typeof f.room === 'string' ? state.rooms[f.room] || null : null;
  }

  const onFrame = {
    welcome(f) {
      const first = !session.identified;
      session.identified = true;
      session.identity = session.identity || { username: f.username, email: '', token: null };
      session.identity.username = f.username;
      session.identity.token = typeof f.token === 'string' ? f.token : null;
      state.me = { username: f.username, avatar: f.avatar };
      const limits = f.limits && typeof f.limits === 'object' ? f.limits : {};
      state.limits.textChars = Number.isInteger(limits.text_chars) ? limits.text_chars : 0;
      state.form.busy = false;
      state.form.error = null;
      for (const name of Array.isArray(f.rooms) ? f.rooms : []) {
        if (typeof name !== 'string') continue;
        session.liveRooms.add(name);
        session.requested.delete(name);
        Chat.ensureRoom(name);
        if (!state.roomOrder.includes(name)) state.roomOrder.push(name);
      }
      if (first) rejoinTheRest();
      const { switchTo } = session;
      if (switchTo && session.liveRooms.has(switchTo)) {
        Chat.show('room', switchTo);
        session.switchTo = null;
      } else if (
        first &&
        state.current.kind === 'room' &&
        !state.roomOrder.includes(state.current.id)
      ) {
        Chat.show('room', state.roomOrder[0]);
      }
      Chat.flushOutbox();
    },

    message(f) {
      const conv = roomOf(f);
      if (conv) receive(conv, fromServer(f), true); // else a room we have left
    },

    dm(f) {
      if (state.me === null || typeof f.from !== 'string' || typeof f.to !== 'string') return;
      const fromMe = Chat.isMe(f.from);
      const peer = fromMe ? f.to : f.from;
      const fresh = !state.dms[Chat.dmKey(peer)];
      const conv = Chat.ensureDm(peer);
      if (!fromMe && Chat.isUsableAvatar(f.avatar)) conv.avatar = f.avatar;
      receive(conv, fromServer(f), true);
      if (fresh) Chat.loadOlder(conv); // what the two said before this page was opened
    },

    // A page we asked for (rooms: `room`; direct conversations: `with`), or the replay that
    // follows a join (it has `recovered`). `more` says whether older pages exist.
    history(f) {
      const conv = typeof f.with === 'string' ? state.dms[Chat.dmKey(f.with)] : roomOf(f);
      if (!conv) return;
      const list = Array.isArray(f.messages) ? f.messages : [];
      const onJoin = typeof f.recovered === 'boolean';
      if (!onJoin && conv.gapLoading) return fillGap(conv, list, f.more);
      const asked = !onJoin && conv.historyLoading;
      if (asked) conv.historyLoading = false;
      const news = asked ? false : conv.kind === 'dm' || conv.replayIsNews;
      const epoch = conv.epoch;
      for (const m of list) receive(conv, fromServer(m), news);
      if (asked)
        conv.historyDone = typeof f.more === 'boolean' ? !f.more : list.length < Chat.HISTORY_PAGE;
      if (!onJoin) return;
      if (f.recovered === false && conv.epoch === epoch) markGap(conv, list);
      else if (f.more === false && !conv.resumeFrom) conv.historyDone = true; // nothing older
      conv.resumeFrom = 0;
    },

    // The room's count and first members (a big room's list is completed with `members`).
    presence(f) {
      const conv = roomOf(f);
      if (!conv || !Array.isArray(f.users)) return;
      conv.users = [];
      mergeMembers(conv, f.users);
      conv.membersAfter = '';
      memberPage(conv, f, f.users);
    },

    members(f) {
      const conv = roomOf(f);
      if (!conv || !Array.isArray(f.users)) return;
      mergeMembers(conv, f.users);
      memberPage(conv, f, f.users);
    },

    join(f) {
      const conv = roomOf(f);
      if (!conv || typeof f.username !== 'string') return;
      const known = conv.users.some((u) => u.username === f.username);
      if (!known) mergeMembers(conv, [f]);
      if (Number.isInteger(f.count)) conv.count = f.count;
      else if (!known) conv.count += 1;
      if (!Chat.isMe(f.username)) presenceNotice(conv, 'join', f.username);
    },

    leave(f) {
      const conv = roomOf(f);
      if (!conv || typeof f.username !== 'string') return;
      const known = conv.users.some((u) => u.username === f.username);
      conv.users = conv.users.filter((u) => u.username !== f.username);
      if (Number.isInteger(f.count)) conv.count = f.count;
      else if (known) conv.count = Math.max(0, conv.count - 1);
      delete conv.typing[f.username];
      if (!Chat.isMe(f.username)) presenceNotice(conv, 'leave', f.username);
    },

    typing(f) {
      const conv = roomOf(f);
      if (!conv || typeof f.username !== 'string' || Chat.isMe(f.username)) return;
      const until = Date.now() + TYPING_SHOWN_MS;
      conv.typing[f.username] = until;
      setTimeout(() => {
        if (conv.typing[f.username] === until) delete conv.typing[f.username];
      }, TYPING_SHOWN_MS);
    },

    error(f) {
      const reason = typeof f.reason === 'string' ? f.reason : String(f.code);
      if (f.request === 'history') return historyRefused(f);
      if (f.request === 'members') return membersRefused(f);
      if (f.request === 'join') return joinRefused(f, reason);
      if (typeof f.cid === 'string') return Chat.sendRefused(f.cid, f.code, reason);
      if (f.code === 'rate_limited') return Chat.resendUnacknowledged();
      if (f.request === 'typing') return; // a dropped typing notice does not matter
      const conv = Chat.currentConversation();
      if (conv) addNotice(conv, reason, 'error');
    },
  };

  // A rejoin's replay that could not hold everything missed: a row where the hole is (after
  // the `since` we sent, before the replay's first message) from which the user loads it.
  function markGap(conv, list) {
    const ids = list.map((m) => m.id).filter(Number.isInteger);
    const after = conv.resumeFrom;
    const before = ids.length ? Math.min(...ids) : 0;
    if (!(after > 0) || before <= after + 1) {
      if (!(after > 0)) addNotice(conv, 'Some messages were missed while you were away.');
      return;
    }
    const at = conv.items.findIndex(
      (i) => i.type === 'message' && i.epoch === conv.epoch && i.id >= before,
    );
    if (at < 0) return;
    const first = conv.items[at];
    conv.items.splice(at, 0, {
      key: 'g' + Chat.newCid(),
      type: 'gap',
      epoch: conv.epoch,
      after, // the last id we have before the hole
      before, // the first id we have after it
      loading: false,
      ts: first.ts,
    });
  }

  // The answer to loadGap() (actions.js): what went into the hole; the row shrinks or goes.
  function fillGap(conv, list, more) {
    conv.gapLoading = false;
    const gap = conv.items.find((i) => i.type === 'gap' && i.loading);
    for (const m of list) receive(conv, fromServer(m), false);
    if (!gap) return;
    gap.loading = false;
    const ids = list.map((m) => m.id).filter(Number.isInteger);
    if (ids.length) gap.before = Math.min(gap.before, ...ids);
    if (gap.epoch !== conv.epoch || !ids.length || more === false || gap.before <= gap.after + 1)
      conv.items.splice(conv.items.indexOf(gap), 1);
  }

  // After the identifying join of a new socket: the rest of the rooms we were in, the one the
  // URL asks for, and the direct conversations' latest pages (they have no `since`; what we
  // already have is dropped as a duplicate).
  function rejoinTheRest() {
    const { conn, liveRooms, requested, switchTo } = session;
    for (const name of state.roomOrder) {
      if (!liveRooms.has(name) && !requested.has(name)) conn.send(Chat.joinFrame(name, false));
    }
    if (switchTo && !liveRooms.has(switchTo) && !requested.has(switchTo)) {
      conn.send(Chat.joinFrame(switchTo, false));
    }
    if (!state.historySupported) return;
    for (const key of state.dmOrder) {
      const conv = state.dms[key];
      if (conv.items.length > 0)
        conn.send({ type: 'history', with: conv.name, limit: Chat.HISTORY_PAGE });
    }
  }

  // A server without history (unknown_type) or a refused page: stop asking, show what we have.
  function historyRefused(f) {
    if (f.code === 'unknown_type') state.historySupported = false;
    for (const conv of [...Object.values(state.rooms), ...Object.values(state.dms)]) {
      if (conv.historyLoading) {
        conv.historyLoading = false;
        conv.historyDone = true;
      }
      if (conv.gapLoading) {
        conv.gapLoading = false;
        conv.items = conv.items.filter((i) => i.type !== 'gap');
      }
    }
  }

  function membersRefused(f) {
    const conv = roomOf(f);
    if (conv) conv.membersLoading = false; // the button stays: the user may try again
  }

  function joinRefused(f, reason) {
    const { identity } = session;
    if (!session.identified) {
      if (f.code === 'broker_down' && identity) {
        // The server cannot reach the rest of the chat for a moment (Redis): ask again soon.
        setTimeout(() => session.identified || Chat.sendIdentifyingJoin(), BROKER_RETRY_MS);
        return;
      }
      if (f.field === 'token' && identity && identity.token) {
        // A token the server no longer knows: the name may be free, so try without it.
        identity.token = null;
        Chat.sendIdentifyingJoin();
        return;
      }
      // Back to the form (also after a reconnect, if someone else took the name meanwhile),
      // with the reason beside the field it is about.
      const nameCodes = ['invalid_username', 'username_taken', 'username_mismatch'];
      let field = null;
      if (f.field === 'email') field = 'email';
      else if (f.field === 'username' || nameCodes.includes(f.code)) field = 'username';
      if (identity && !state.form.username) state.form.username = identity.username;
      session.identity = null;
      state.me = null;
      state.form.busy = false;
      state.form.error = { field, text: reason };
      return;
    }
    // A further room: the sidebar's room form shows why.
    if (typeof f.room === 'string') session.requested.delete(f.room.toLowerCase());
    session.switchTo = null;
    state.roomError = reason;
  }

  Chat.dispatch = function dispatch(frame) {
    const handler =
      Object.prototype.hasOwnProperty.call(onFrame, frame.type) && onFrame[frame.type];
    if (handler) handler(frame);
  };
})(window.Chat);
