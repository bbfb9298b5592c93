// Starts the page: actions.js opens the socket, Vue draws the views, and the tab's title
// follows the conversation and the count of messages that arrived while it was hidden.
(function (Chat) {
  'use strict';

  const { createApp, h, watchEffect } = Vue;

  Chat.start();
  createApp({ render: () => h(Chat.views.App) }).mount('#app');

  watchEffect(() => {
    const conv = Chat.state.me ? Chat.currentConversation() : null;
    const where = conv ? (conv.kind === 'room' ? '#' : '@') + conv.name + ' · ' : '';
    const unread = Chat.state.hiddenUnread ? '(' + Chat.state.hiddenUnread + ') ' : '';
    document.title = unread + where + 'Simple Chat';
  });
})(window.Chat);
