// One WebSocket to /ws that reconnects by itself. It knows frames and timing, not chat: the
// page (actions.js, frames.js) decides what to send when the socket opens.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30000; // a page left open through a long outage still retries twice a minute
const STABLE_AFTER_MS = 5000; // a socket that stayed open this long resets the backoff

// Exponential backoff with "equal jitter": the wait is between half and all of the ceiling.
// Jitter keeps every open page from reconnecting in the same instant after a server restart;
// the half that is fixed keeps a page from hammering a server that refuses it at once.
export function reconnectDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

export function socketUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
}

export class Connection {
  // handlers: onOpen(), onFrame(frame), onClose(delayMs, code, opened): code is the close
  // frame's (docs/protocol.md: 4003 = the session was revoked); `opened` is false for an
  // upgrade that failed (the server down, or refusing it: 401 for a dead session cookie)
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = 0;
    this.stableTimer = 0;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.retryTimer);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_AFTER_MS);
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_) {
        return; // the protocol promises JSON; a stray frame is not worth breaking the page
      }
      if (frame && typeof frame === 'object') this.handlers.onFrame(frame);
    };
    // A failed connect fires error then close; close alone is enough to schedule the retry.
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      clearTimeout(this.stableTimer);
      this.ws = null;
      const delay = reconnectDelay(this.attempt++);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.handlers.onClose(delay, event.code, opened);
    };
  }

  // No retry until reopen() or retryNow(): what the next upgrade carries is being settled.
  hold() {
    clearTimeout(this.retryTimer);
  }

  // A new socket at once, the old one dropped unannounced: the upgrade must carry a cookie
  // that changed (signed in, or the session ended).
  reopen() {
    const old = this.ws;
    this.ws = null; // so the old socket's close event is ignored
    clearTimeout(this.stableTimer);
    this.attempt = 0;
    if (old) {
      old.onmessage = null;
      // Closing one still connecting makes the browser log an error: it closes once open.
      old.onopen = () => old.close(1000);
      if (old.readyState === WebSocket.OPEN) old.close(1000);
    }
    this.connect();
  }

  // Sends one frame if the socket is open; false tells the caller to keep it for later.
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // The banner's "Reconnect now": skip the rest of the wait.
  retryNow() {
    if (this.ws === null) this.connect();
  }
}
