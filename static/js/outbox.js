// Our messages on their way: shown as "Sending…" until the server's copy (the acknowledgement,
// matched by cid) arrives, kept across reconnects, and resent with the same cid, which the
// server stores only once.
(function (Chat) {
  'use strict';

  const { state, session } = Chat;

  const RETRY_MS = 1000; // after a refusal that is not the message's fault
  const RETRIES = 5;
  // Refusals of the message itself: sending it again can never succeed, only editing it.
  const PERMANENT = ['too_long', 'empty_text', 'invalid_field', 'missing_field'];
  // The outbox keeps itself under the server's default rate limit (10 frames/s, burst 20), so
  // a backlog sent after a reconnect is not refused (and, refused often, cut off with 1008).
  const SEND_BURST = 16;
  const SEND_PER_S = 8;

  let tokens = SEND_BURST;
  let tokensAt = Date.now();
  let flushTimer = 0;

  function takeToken() {
    const now = Date.now();
    tokens = Math.min(SEND_BURST, tokens + ((now - tokensAt) / 1000) * SEND_PER_S);
    tokensAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  function frameFor(entry) {
    return entry.kind === 'room'
      ? { type: 'message', room: entry.target, text: entry.text, cid: entry.cid }
      : { type: 'dm', to: entry.target, text: entry.text, cid: entry.cid };
  }

  // Sends whatever in the outbox has not gone out on this socket yet.
  function flush() {
    clearTimeout(flushTimer);
    if (!session.identified) return;
    for (const entry of state.outbox) {
      if (entry.status !== 'sending' || entry.sentOn === session.serial) continue;
      if (entry.kind === 'room' && !session.liveRooms.has(entry.target)) continue;
      if (!takeToken()) {
        flushTimer = setTimeout(flush, 1000 / SEND_PER_S);
        return;
      }
      if (session.conn.send(frameFor(entry))) entry.sentOn = session.serial;
    }
  }

  function resendLater(entry) {
    entry.tries += 1;
    entry.sentOn = 0;
    setTimeout(flush, RETRY_MS);
  }

  function find(cid) {
    return state.outbox.find((e) => e.cid === cid);
  }

  function conversationOf(entry) {
    return entry.kind === 'room' ? state.rooms[entry.target] : state.dms[Chat.dmKey(entry.target)];
  }

  // The text back into the composer it came from, in front of anything typed since.
  function backToComposer(entry) {
    const conv = conversationOf(entry);
    if (!conv) return;
    const key = Chat.draftKey(conv);
    const draft = state.drafts[key] || '';
    state.drafts[key] = draft.trim() ? entry.text + '\n' + draft : entry.text;
    Chat.settle(entry.cid);
  }

  // A refusal of the text itself: the reason goes beside the composer, and so does the text
  // (unless something else is being typed: then its row offers Edit instead of Retry).
  function refusedForGood(entry, reason) {
    const conv = conversationOf(entry);
    if (conv) conv.sendError = 'Not sent: ' + reason;
    if (conv && !(state.drafts[Chat.draftKey(conv)] || '').trim()) {
      backToComposer(entry);
      return;
    }
    entry.status = 'failed';
    entry.permanent = true;
    entry.reason = reason;
  }

  // What the user can do about a direct message to someone who is not online.
  function offlineReason(name) {
    return (
      name + ' is offline, so it was not delivered. Send it again when ' + name +
      ' is back, or mention @' + name + ' in a room: rooms keep their messages.'
    );
  }

  Object.assign(Chat, {
    flushOutbox: flush,

    send(text) {
      const conv = Chat.currentConversation();
      if (!conv || state.me === null || !text.trim()) return false;
      const limit = state.limits.textChars;
      if (limit && Chat.charCount(text) > limit) return false; // the composer says why
      conv.sendError = '';
      const last = conv.items[conv.items.length - 1];
      state.outbox.push({
        cid: Chat.newCid(),
        kind: conv.kind,
        target: conv.name,
        text,
        status: 'sending', // or 'failed', with the server's reason
        reason: '',
        sentOn: 0, // the socket it went out on; 0 = not yet
        tries: 0,
        permanent: false, // failed for a reason a retry cannot change
        // The item it was sent after: a failed message stays there, not below newer ones.
        after: last ? last.key : '',
      });
      if (conv.kind === 'room') Chat.stoppedTyping(conv.name);
      flush(); // if the socket is down it goes out after the rejoin
      return true;
    },

    // The acknowledgement came: the server's copy replaces ours.
    settle(cid) {
      const at = state.outbox.findIndex((e) => e.cid === cid);
      if (at >= 0) state.outbox.splice(at, 1);
    },

    // An error named our cid.
    sendRefused(cid, code, reason) {
      const entry = find(cid);
      if (!entry) return;
      if (code === 'rate_limited') {
        // We outran the server's limit: wait for our own bucket to refill, then send it again.
        // Not counted as a try, since the message itself is fine.
        tokens = 0;
        tokensAt = Date.now();
        entry.sentOn = 0;
        setTimeout(flush, RETRY_MS);
        return;
      }
      const transient = ['rate_limited', 'not_in_room', 'not_joined', 'store_failed',
        'broker_down'];
      if (transient.includes(code) && entry.tries < RETRIES) {
        resendLater(entry); // not the message's fault: once the limit or the rejoin allows
        return;
      }
      if (PERMANENT.includes(code)) {
        refusedForGood(entry, reason);
        return;
      }
      entry.status = 'failed';
      entry.reason = code === 'not_online' && entry.kind === 'dm' ? offlineReason(entry.target)
        : reason;
    },

    // A rate_limited error does not say which frame it refused: send again whatever is not yet
    // acknowledged on this socket (a repeat of one that did get through is stored only once).
    resendUnacknowledged() {
      for (const entry of state.outbox) {
        if (entry.status === 'sending' && entry.sentOn === session.serial) resendLater(entry);
      }
    },

    retry(cid) {
      const entry = find(cid);
      if (!entry) return;
      Object.assign(entry, { status: 'sending', reason: '', sentOn: 0, tries: 0 });
      flush();
    },

    discard(cid) {
      Chat.settle(cid);
    },

    edit(cid) {
      const entry = find(cid);
      if (entry) backToComposer(entry);
      Vue.nextTick(Chat.focusComposer);
    },

    // Drops what was waiting for a room we left or a conversation we closed.
    dropOutbox(kind, key) {
      state.outbox = state.outbox.filter(
        (e) => !(e.kind === kind && (kind === 'room' ? e.target : Chat.dmKey(e.target)) === key),
      );
    },

    pendingFor(conv) {
      const key = conv.kind === 'room' ? conv.name : Chat.dmKey(conv.name);
      return state.outbox.filter(
        (e) =>
          e.kind === conv.kind && (conv.kind === 'room' ? e.target : Chat.dmKey(e.target)) === key,
      );
    },
  });
})(window.Chat);
