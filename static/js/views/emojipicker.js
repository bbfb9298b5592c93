// The emoji picker: a dialog opened from a message's "React" action (or the "+" beside its
// reactions) that hands the emoji picked to whoever opened it. Categories, a search over
// names, :shortcodes: and keywords, the emoji used lately first. Focus stays in the search
// field (a combobox over the grid, aria-activedescendant): arrows move, Enter picks, Escape
// closes and gives focus back to the button that opened it. Its data loads on first use
// (static/js/emoji.js). One picker for the page, mounted beside the app on first use.
import { gridMove, loadEmoji, recentEmoji, rememberEmoji, searchEmoji } from '../emoji.js';
import { createApp, h, nextTick, reactive } from '../vue.js';

const COLUMNS = 8; // the grid's columns (static/style.css, "Emoji picker")
const MARGIN_PX = 8; // the least space kept between the picker and the window's edges

const picker = reactive({
  open: false,
  title: '',
  query: '',
  active: 0, // index into the shown emoji, in order
  data: null,
  error: '',
  top: 0,
  left: 0,
});
let opener = null; // the element focus goes back to
let onPick = null;
let mounted = false;

// Opens the picker by `from` (the button clicked); `pick(char)` gets the emoji chosen.
export function openEmojiPicker(from, title, pick) {
  if (!mounted) {
    const host = document.createElement('div');
    host.id = 'emoji-picker-host';
    document.body.appendChild(host);
    createApp({ render: () => h(EmojiPicker) }).mount(host);
    mounted = true;
  }
  opener = from;
  onPick = pick;
  Object.assign(picker, { open: true, title, query: '', active: 0, error: '' });
  if (picker.data === null) {
    loadEmoji().then(
      (data) => {
        picker.data = data;
        nextTick(place);
      },
      (err) => {
        picker.error = 'The emoji could not be loaded (' + err.message + ').';
      },
    );
  }
  nextTick(() => {
    place();
    const input = document.getElementById('emoji-search');
    if (input) input.focus();
  });
}

export function closeEmojiPicker(returnFocus) {
  if (!picker.open) return;
  picker.open = false;
  if (returnFocus && opener && opener.isConnected) opener.focus();
  opener = null;
  onPick = null;
}

// Beside the button that opened it (below it, or above if there is no room), inside the
// window.
function place() {
  const dialog = document.getElementById('emoji-picker');
  if (!dialog || !opener) return;
  const at = opener.getBoundingClientRect();
  const width = dialog.offsetWidth;
  const height = dialog.offsetHeight;
  const fit = (start, size, room) => Math.max(MARGIN_PX, Math.min(start, room - size - MARGIN_PX));
  let top = at.bottom + 4;
  if (top + height > window.innerHeight - MARGIN_PX) top = at.top - height - 4;
  picker.top = fit(top, height, window.innerHeight);
  // Over the side of the window the button is on: from its left edge in the left half,
  // back from its right edge in the right half.
  const fromLeft = at.left + at.width / 2 < window.innerWidth / 2;
  picker.left = fit(fromLeft ? at.left : at.right - width, width, window.innerWidth);
}

// The groups shown now: the search's results, or the recent row and the categories.
function sections() {
  const data = picker.data;
  if (data === null) return [];
  if (picker.query.trim()) {
    return [{ id: 'results', name: 'Search results', emoji: searchEmoji(data, picker.query) }];
  }
  const recent = recentEmoji(data);
  const head = recent.length ? [{ id: 'recent', name: 'Recently used', emoji: recent }] : [];
  return head.concat(data.categories);
}

function optionId(index) {
  return 'emoji-option-' + index;
}

function choose(entry) {
  const pick = onPick;
  rememberEmoji(entry.char);
  closeEmojiPicker(true);
  if (pick) pick(entry.char);
}

function onKey(event, groups, shown) {
  // The page's own keys (keys.js: Escape for the drawer, Alt+arrows for the next
  // conversation) are not for the page behind an open picker.
  event.stopPropagation();
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'Escape') {
    event.preventDefault();
    closeEmojiPicker(true);
  } else if (event.key === 'Enter') {
    event.preventDefault();
    if (shown[picker.active]) choose(shown[picker.active]);
  } else if (/^Arrow(Up|Down)$/.test(event.key) ||
             (/^Arrow(Left|Right)$/.test(event.key) && !picker.query)) {
    // With a query typed, ←/→ move in the text; ↑/↓ still move in the grid.
    if (!shown.length) return;
    event.preventDefault();
    picker.active = gridMove(groups, picker.active, event.key, COLUMNS);
    nextTick(() => {
      const option = document.getElementById(optionId(picker.active));
      if (option) option.scrollIntoView({ block: 'nearest' });
    });
  }
}

function jumpTo(groups, id) {
  let index = 0;
  for (const g of groups) {
    if (g.id === id) break;
    index += g.emoji.length;
  }
  picker.active = index;
  const section = document.getElementById('emoji-group-' + id);
  if (section) section.scrollIntoView({ block: 'start' });
  document.getElementById('emoji-search').focus();
}

function grid(groups) {
  let index = 0;
  return groups.map((g) =>
    h('div', { class: 'emoji-group', role: 'group', 'aria-labelledby': 'emoji-group-' + g.id }, [
      h('div', { class: 'emoji-group-name', id: 'emoji-group-' + g.id }, g.name),
      h(
        'div',
        { class: 'emoji-grid' },
        g.emoji.map((entry) => {
          const i = index++;
          return h(
            'span',
            {
              key: g.id + entry.char,
              id: optionId(i),
              role: 'option',
              class: ['emoji-option', { active: i === picker.active }],
              'aria-selected': i === picker.active ? 'true' : 'false',
              'aria-label': entry.name,
              title: entry.name + (entry.codes.length ? ' :' + entry.codes[0] + ':' : ''),
              // mousedown would take focus from the search field: keep it there
              onMousedown: (e) => e.preventDefault(),
              onClick: () => choose(entry),
              onMousemove: () => (picker.active = i),
            },
            entry.char,
          );
        }),
      ),
    ]),
  );
}

function body(groups, shown) {
  if (picker.error) return h('p', { class: 'emoji-status', role: 'alert' }, picker.error);
  if (picker.data === null) return h('p', { class: 'emoji-status' }, 'Loading emoji…');
  if (!shown.length) return h('p', { class: 'emoji-status' }, 'No emoji found');
  return grid(groups);
}

function tabs(groups) {
  if (picker.query.trim() || picker.data === null) return null;
  return h(
    'div',
    { class: 'emoji-tabs' },
    groups.map((g) =>
      h(
        'button',
        {
          type: 'button',
          tabindex: '-1', // the arrows reach every emoji; Tab goes on to the grid's buttons
          'aria-label': g.name,
          title: g.name,
          onMousedown: (e) => e.preventDefault(),
          onClick: () => jumpTo(groups, g.id),
        },
        g.id === 'recent' ? '🕘' : g.emoji[0].char,
      ),
    ),
  );
}

function preview(shown) {
  const entry = shown[picker.active];
  if (!entry) return h('div', { class: 'emoji-preview' });
  return h('div', { class: 'emoji-preview', 'aria-hidden': 'true' }, [
    h('span', { class: 'emoji-preview-char' }, entry.char),
    h('span', { class: 'emoji-preview-name' }, entry.name),
    entry.codes.length ? h('code', ':' + entry.codes[0] + ':') : null,
  ]);
}

const EmojiPicker = {
  name: 'EmojiPicker',
  mounted() {
    // A press outside the picker closes it (focus then goes where the press put it).
    this.onDown = (event) => {
      const dialog = document.getElementById('emoji-picker');
      if (picker.open && dialog && !dialog.contains(event.target)) closeEmojiPicker(false);
    };
    this.onResize = () => picker.open && place();
    document.addEventListener('pointerdown', this.onDown, true);
    window.addEventListener('resize', this.onResize);
  },
  unmounted() {
    document.removeEventListener('pointerdown', this.onDown, true);
    window.removeEventListener('resize', this.onResize);
  },
  render() {
    if (!picker.open) return null;
    const groups = sections();
    const shown = groups.flatMap((g) => g.emoji);
    if (picker.active >= shown.length) picker.active = Math.max(0, shown.length - 1);
    return h(
      'div',
      {
        id: 'emoji-picker',
        class: 'emoji-picker',
        role: 'dialog',
        'aria-label': picker.title,
        style: { top: picker.top + 'px', left: picker.left + 'px' },
        onKeydown: (e) => onKey(e, groups, shown),
        // Tab taking focus to another control of the page closes it (a press outside is
        // onDown's; focus lost to nothing, a click on a heading inside, keeps it open).
        onFocusout: (e) => {
          const to = e.relatedTarget;
          if (to && !e.currentTarget.contains(to)) closeEmojiPicker(false);
        },
      },
      [
        h('input', {
          id: 'emoji-search',
          type: 'search',
          class: 'emoji-search',
          placeholder: 'Search emoji',
          autocomplete: 'off',
          role: 'combobox',
          'aria-label': 'Search emoji by name, :shortcode: or keyword',
          'aria-expanded': 'true',
          'aria-controls': 'emoji-listbox',
          'aria-activedescendant': shown.length ? optionId(picker.active) : undefined,
          value: picker.query,
          onInput: (e) => {
            picker.query = e.target.value;
            picker.active = 0;
          },
        }),
        tabs(groups),
        h(
          'div',
          { id: 'emoji-listbox', class: 'emoji-list', role: 'listbox', 'aria-label': 'Emoji' },
          body(groups, shown),
        ),
        preview(shown),
      ],
    );
  },
};
