// The page's state: the one module the rest of the page reads it from, and the one place its
// changes go through.
//
// `state` is what the views draw; `session` belongs to the connection and is never drawn. Both
// are exported read-only (Vue's readonly() for `state`; writing `session` throws): every change
// is one of the verbs exported below, which live in this folder (page.js, auth.js,
// messages.js, members.js, outbox.js) beside the writable objects (store.js). Verbs that act on a
// conversation take the one the caller holds, or its name, and change the writable original.
import { dmKey } from '../protocol.js';
import { readonly } from '../vue.js';
import * as store from './store.js';

export const state = readonly(store.state);

export const session = new Proxy(store.session, {
  set(_, name) {
    throw new TypeError('session.' + String(name) + ' is changed only by the verbs of state/');
  },
});

// ---- reading --------------------------------------------------------------------------------

export function currentConversation() {
  const { kind, id } = state.current;
  return (kind === 'room' ? state.rooms[id] : state.dms[id]) || null;
}

export const { isCurrent, isMe } = store;

// Our messages on their way to one conversation, oldest first.
export function pendingFor(conv) {
  const key = conv.kind === 'room' ? conv.name : dmKey(conv.name);
  return state.outbox.filter(
    (e) => e.kind === conv.kind && (conv.kind === 'room' ? e.target : dmKey(e.target)) === key,
  );
}

// ---- changing ---------------------------------------------------------------------------------

export * from './page.js';
export * from './auth.js';
export {
  directMessage,
  gapPage,
  historyPage,
  historyRefused,
  MAX_NOTICE_LINES,
  noticeInCurrent,
  olderPage,
  roomMessage,
} from './messages.js';
export * from './members.js';
export * from './rooms.js';
export * from './changes.js';
export * from './people.js';
export * as outbox from './outbox.js';
export * from './replies.js';
export * from './jumps.js';
export * from './search.js';
