// The page's entry module (templates/index.html loads it): actions.js opens the socket, Vue
// draws the views, and the tab's title follows the conversation and the count of messages
// that arrived while it was hidden. Every other module is reached from here by `import`.
import { start } from './actions.js';
import { MAX_NOTICE_LINES, currentConversation, state } from './state/index.js';
import * as store from './state/store.js';
import { parseText } from './text.js';
import { createApp, h, watchEffect } from './vue.js';
import { App } from './views/app.js';

start();
createApp({ render: () => h(App) }).mount('#app');

watchEffect(() => {
  const conv = state.me ? currentConversation() : null;
  const where = conv ? (conv.kind === 'room' ? '#' : '@') + conv.name + ' · ' : '';
  const unread = state.hiddenUnread ? '(' + state.hiddenUnread + ') ' : '';
  document.title = unread + where + 'Simple Chat';
});

// The browser tests' hook (tests/browser), and nothing of the page uses it: they hold a
// connection back (session.conn), set or read the state, check the notice cap and the text
// parser. `state` and `session` here are the writable ones, which the page's own modules
// reach only through state/index.js.
window.Chat = {
  state: store.state,
  session: store.session,
  MAX_NOTICE_LINES,
  parseText,
};
