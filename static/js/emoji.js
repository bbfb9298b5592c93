// The emoji picker's data (static/vendor/emoji.json, made from emojibase-data by
// scripts/emoji_data.py): loaded the first time a picker opens, searched here, the emoji
// this browser picked lately (kept in localStorage), and the arrow keys' moves in its grid.

const DATA_URL = new URL('../vendor/emoji.json', import.meta.url);
const RECENT_KEY = 'chat.emoji.recent';
const RECENT_MAX = 24; // three rows of the picker's grid

let loading = null;

// {categories: [{id, name, emoji: [{char, name, codes, words}]}]}, fetched once.
export function loadEmoji() {
  if (loading === null) {
    loading = fetch(DATA_URL)
      .then((response) => {
        if (!response.ok) throw new Error('emoji data: HTTP ' + response.status);
        return response.json();
      })
      .then(unpack)
      .catch((err) => {
        loading = null; // the next opening tries again
        throw err;
      });
  }
  return loading;
}

function unpack(raw) {
  const byChar = new Map();
  const categories = raw.categories.map((c) => ({
    id: c.id,
    name: c.name,
    emoji: c.emoji.map(([char, name, codes, words]) => {
      // What a search looks in: the name, each :code: and the keywords, lower case.
      const haystack = [name, ...codes.map((code) => ':' + code + ':'), words]
        .join(' ')
        .toLowerCase();
      const entry = { char, name, codes, haystack };
      byChar.set(char, entry);
      return entry;
    }),
  }));
  return { categories, byChar };
}

// The emoji whose name, shortcode or keywords hold every word of `query`, those whose name
// starts with the query first.
export function searchEmoji(data, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  const found = [];
  for (const category of data.categories) {
    for (const entry of category.emoji) {
      if (words.every((w) => entry.haystack.includes(w))) found.push(entry);
    }
  }
  const first = words[0].replace(/^:/, '');
  const starts = (e) => e.name.startsWith(first) || e.codes.some((c) => c.startsWith(first));
  return found.filter(starts).concat(found.filter((e) => !starts(e)));
}

// The emoji picked lately here, newest first (only those the data still holds).
export function recentEmoji(data) {
  let list = [];
  try {
    list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
  } catch {
    list = []; // storage off or the value not ours: nothing recent
  }
  if (!Array.isArray(list)) return [];
  return list.map((char) => data.byChar.get(char)).filter(Boolean);
}

export function rememberEmoji(char) {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    const rest = Array.isArray(list) ? list.filter((c) => c !== char) : [];
    localStorage.setItem(RECENT_KEY, JSON.stringify([char, ...rest].slice(0, RECENT_MAX)));
  } catch {
    // storage full or off: the picker still works, without a recent row
  }
}

// The index an arrow key leads to from `index` in groups shown as grids `columns` wide:
// ←/→ step, ↑/↓ keep the column, going to the row above or below, in the next group if need be.
export function gridMove(groups, index, key, columns) {
  const total = groups.reduce((n, g) => n + g.emoji.length, 0);
  if (key === 'ArrowLeft') return Math.max(0, index - 1);
  if (key === 'ArrowRight') return Math.min(total - 1, index + 1);
  let start = 0;
  let g = 0;
  while (g < groups.length - 1 && index >= start + groups[g].emoji.length) {
    start += groups[g].emoji.length;
    g++;
  }
  const at = index - start;
  const column = at % columns;
  const size = groups[g].emoji.length;
  if (key === 'ArrowDown') {
    if (at + columns < size) return index + columns;
    const lastRow = Math.floor((size - 1) / columns);
    if (Math.floor(at / columns) < lastRow) return start + size - 1;
    if (g === groups.length - 1) return index;
    return start + size + Math.min(column, groups[g + 1].emoji.length - 1);
  }
  if (at - columns >= 0) return index - columns;
  if (g === 0) return index;
  const above = groups[g - 1].emoji.length;
  const lastRowStart = Math.floor((above - 1) / columns) * columns;
  return start - above + Math.min(lastRowStart + column, above - 1);
}
