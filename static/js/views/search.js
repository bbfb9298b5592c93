// The search view (docs/search.md, "The page"): the form with its filters, the results with
// their excerpts (the hits marked), "More results"; the search button of the top bar; the
// line that says a jump could not be made; the line of a copied message link.
import {
  closeSearch,
  moreResults,
  openResult,
  openSearch,
  runSearch,
} from '../actions.js';
import { linkShown, setJumpNotice, setSearchField, state } from '../state/index.js';
import { h, onMounted, ref } from '../vue.js';
import { Avatar, timeTag } from './parts.js';

export const SearchButton = {
  setup() {
    return () =>
      h(
        'button',
        {
          type: 'button',
          class: 'search-open',
          'aria-label': 'Search messages (Ctrl+K)',
          'aria-expanded': String(state.search.open),
          title: 'Search messages (Ctrl+K or /)',
          onClick: () => (state.search.open ? closeSearch() : openSearch()),
        },
        [
          h('span', { 'aria-hidden': 'true' }, '⌕'),
          h('span', { class: 'search-label' }, 'Search'),
        ],
      );
  },
};

function input(name, attrs) {
  return h('input', {
    id: 'search-' + name,
    value: state.search.form[name],
    onInput: (e) => setSearchField(name, e.target.value),
    ...attrs,
  });
}

function labelled(name, label, control) {
  return h('div', { class: 'search-field' }, [
    h('label', { for: 'search-' + name }, label),
    control,
  ]);
}

// Everywhere, or one of the rooms or direct conversations in the sidebar.
function whereSelect() {
  const options = [h('option', { value: '' }, 'Everywhere')];
  for (const name of state.roomOrder) {
    options.push(h('option', { value: 'room:' + name }, '#' + name));
  }
  for (const key of state.dmOrder) {
    const name = state.dms[key].name;
    options.push(h('option', { value: 'dm:' + name }, '@' + name));
  }
  return h(
    'select',
    {
      id: 'search-where',
      value: state.search.form.where,
      onChange: (e) => setSearchField('where', e.target.value),
    },
    options,
  );
}

function searchForm() {
  const submit = (e) => {
    e.preventDefault();
    runSearch();
  };
  const attrs = { class: 'search-form', role: 'search', onSubmit: submit, novalidate: true };
  return h('form', attrs, [
    h('div', { class: 'search-line' }, [
      input('query', {
        type: 'search',
        placeholder: 'Search messages: words, or the start of one with *',
        'aria-label': 'Search messages',
        autocomplete: 'off',
        spellcheck: false,
        maxlength: 200, // the server's search-query-max-chars default
      }),
      h('button', { type: 'submit' }, 'Search'),
    ]),
    h('div', { class: 'search-filters' }, [
      labelled('where', 'In', whereSelect()),
      labelled(
        'from',
        'From',
        input('from', {
          type: 'text',
          placeholder: 'anyone',
          autocomplete: 'off',
          spellcheck: false,
        }),
      ),
      labelled('after', 'After', input('after', { type: 'date' })),
      labelled('before', 'Before', input('before', { type: 'date' })),
    ]),
  ]);
}

// The excerpt's [text, hit] pairs: hits as <mark>, all of it text nodes (never markup).
export function excerpt(pairs) {
  return pairs.map(([text, hit]) => (hit ? h('mark', text) : text));
}

function resultRow(r) {
  const where = r.kind === 'room' ? '#' + r.name : '@' + r.name;
  return h('li', { key: r.key, class: 'search-result' }, [
    h(
      'button',
      {
        type: 'button',
        class: 'search-hit',
        'data-id': r.id,
        'aria-label': r.username + ' in ' + where + ': ' + r.excerpt.map((p) => p[0]).join(''),
        onClick: () => openResult(r),
      },
      [
        h(Avatar, { name: r.username, url: r.avatar }),
        h('span', { class: 'search-hit-body' }, [
          h('span', { class: 'search-meta' }, [
            h('span', { class: 'search-where' }, where),
            h('span', { class: 'name' }, r.username),
            r.guest ? h('span', { class: 'guest-mark' }, 'guest') : null,
            timeTag(r.ts),
          ]),
          h('span', { class: 'search-excerpt' }, excerpt(r.excerpt)),
        ]),
      ],
    ),
  ]);
}

function outcome() {
  const s = state.search;
  if (s.error) return h('p', { class: 'search-error field-error', role: 'alert' }, s.error);
  if (s.loading && !s.results.length) {
    return h('p', { class: 'muted', role: 'status' }, 'Searching…');
  }
  if (s.done && !s.results.length) {
    return h('p', { class: 'search-none', role: 'status' }, [
      'No messages match “' + s.asked.query + '”. ',
      h(
        'span',
        { class: 'muted' },
        'Every word must be in the message; deplo* finds deploy and deployed.',
      ),
    ]);
  }
  return null;
}

export const SearchView = {
  setup() {
    onMounted(() => {
      const field = document.getElementById('search-query');
      if (field) field.focus();
    });
    return () => {
      const s = state.search;
      return h('section', { class: 'search-view', 'aria-label': 'Search messages' }, [
        h('div', { class: 'search-head' }, [
          h('h2', 'Search'),
          h(
            'button',
            {
              type: 'button',
              class: 'icon',
              'aria-label': 'Close the search',
              onClick: closeSearch,
            },
            '×',
          ),
        ]),
        searchForm(),
        outcome(),
        s.results.length
          ? h('ol', { class: 'search-results', 'aria-label': 'Results' }, s.results.map(resultRow))
          : null,
        s.more
          ? h('div', { class: 'search-more' }, [
              s.loading
                ? h('span', { class: 'muted' }, 'Loading…')
                : h('button', { type: 'button', onClick: moreResults }, 'More results'),
            ])
          : null,
      ]);
    };
  },
};

// Why a jump to a message (a result, a link, a quote) found nothing.
export function jumpNotice() {
  if (!state.jumpNotice) return null;
  return h('div', { class: 'jump-notice', role: 'alert' }, [
    h('span', state.jumpNotice),
    h(
      'button',
      { type: 'button', class: 'icon', 'aria-label': 'Dismiss', onClick: () => setJumpNotice('') },
      '×',
    ),
  ]);
}

// "Link copied", or, where the page may not write the clipboard, the link in a field,
// selected, to copy by hand.
const LinkField = {
  props: { url: String },
  setup(props) {
    const field = ref(null);
    onMounted(() => field.value && field.value.select());
    return () =>
      h('input', {
        ref: field,
        id: 'copy-link-field',
        class: 'copy-link-field',
        type: 'text',
        readonly: true,
        value: props.url,
        'aria-label': 'Link to the message',
        onFocus: (e) => e.target.select(),
      });
  },
};

export function linkLine() {
  const link = state.copiedLink;
  if (!link) return null;
  const close = h(
    'button',
    { type: 'button', class: 'icon', 'aria-label': 'Close', onClick: () => linkShown(null, false) },
    '×',
  );
  if (link.copied) {
    return h('div', { class: 'copy-link', role: 'status' }, [h('span', 'Link copied'), close]);
  }
  return h('div', { class: 'copy-link', role: 'status' }, [
    h('span', 'Copy the link (Ctrl+C):'),
    h(LinkField, { url: link.url, key: link.url }),
    close,
  ]);
}
