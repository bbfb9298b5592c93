// Vue as a module. The vendored file is Vue's global build (static/vendor/README): a classic
// script that defines `window.Vue`, loaded by templates/index.html just before the page's
// modules, which run after it in document order. This module is the only place that reads the
// global; the rest of the page imports what it uses from here.
const Vue = window.Vue;
if (!Vue) throw new Error('static/vendor/vue.runtime.global.prod.js did not load before the page');

export const {
  createApp,
  h,
  markRaw,
  nextTick,
  onBeforeUpdate,
  onMounted,
  onUnmounted,
  onUpdated,
  reactive,
  readonly,
  ref,
  toRaw,
  watch,
  watchEffect,
} = Vue;
