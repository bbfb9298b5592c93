// Keys that work anywhere on the page: Escape closes the drawer (back to its button);
// Alt+Up and Alt+Down go to the previous and next conversation of the sidebar; Ctrl+K (⌘K),
// or "/" when not typing, opens the search, and Escape closes it.
import { closeSearch, openSearch } from './search.js';
import { setSidebarOpen, show, state } from './state/index.js';
import { nextTick } from './vue.js';

function typing(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))
  );
}

function searchKey(e) {
  if (state.me === null) return false;
  const ctrlK = e.key.toLowerCase() === 'k' && (e.ctrlKey || e.metaKey) && !e.altKey;
  const slash = e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(e.target);
  if (ctrlK || slash) {
    e.preventDefault();
    openSearch();
    return true;
  }
  if (e.key === 'Escape' && state.search.open) {
    e.preventDefault();
    closeSearch();
    return true;
  }
  return false;
}

export function onKeydown(e) {
  if (searchKey(e)) return;
  if (e.key === 'Escape' && state.sidebarOpen) {
    e.preventDefault();
    setSidebarOpen(false);
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
  nextTick(focusComposer);
}

export function focusComposer() {
  const composer = document.getElementById('composer-text');
  if (composer) composer.focus();
}
