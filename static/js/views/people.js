// People in the page: the presence dot and line (online, away, offline and since when), the
// header of a direct conversation, and "New message" to anyone by name, with suggestions.
import { askStatusOfPeer, findPerson, knownNames, openDm } from '../actions.js';
import { dmKey } from '../protocol.js';
import { state } from '../state/index.js';
import { h, onMounted, onUnmounted, ref, watch } from '../vue.js';

const PEER_STATUS_EVERY_MS = 30_000; // a direct conversation's party is asked about this often
const SUGGESTIONS = 8; // names listed under "New message"
const LABELS = { online: 'Online', away: 'Away', offline: 'Offline' };
const ago = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [7, 'day'],
  [Infinity, 'week'],
];

function lastSeenText(ms) {
  let amount = Math.round((ms - Date.now()) / 1000);
  if (Math.abs(amount) < 60) return 'just now';
  for (const [size, unit] of STEPS) {
    if (Math.abs(amount) < size) return ago.format(amount, unit);
    amount = Math.round(amount / size);
  }
  return '';
}

export function personOf(name) {
  return state.people[dmKey(name)] || null;
}

// "Online", "Away", "Offline, last seen 5 minutes ago"; '' when the page was not told.
export function presenceText(person) {
  if (!person) return '';
  const label = LABELS[person.state];
  if (person.state !== 'offline' || !person.lastSeen) return label;
  return label + ', last seen ' + lastSeenText(person.lastSeen);
}

// A coloured dot with its state in a tooltip and for screen readers. `fallback`: the state
// shown before the server told one (a member listed in a room is connected).
export function presenceDot(name, fallback) {
  const person = personOf(name);
  const presence = person ? person.state : fallback;
  if (!presence) return null;
  const text = person ? presenceText(person) : LABELS[presence];
  return h('span', { class: ['presence-dot', presence], title: text }, [
    h('span', { class: 'sr-only' }, ' (' + text + ')'),
  ]);
}

// Above a direct conversation: who it is with, and whether they are there.
export const DmHeader = {
  props: { conv: Object },
  setup(props) {
    let timer = 0;
    const ask = () => askStatusOfPeer(props.conv.name);
    onMounted(() => {
      ask();
      timer = setInterval(ask, PEER_STATUS_EVERY_MS);
    });
    onUnmounted(() => clearInterval(timer));
    watch(() => props.conv.name, ask);
    return () => {
      const person = personOf(props.conv.name);
      return h('div', { class: 'dm-header' }, [
        presenceDot(props.conv.name),
        h('span', { class: 'dm-with' }, props.conv.name),
        h('span', { class: 'presence-text muted', role: 'status' }, presenceText(person)),
      ]);
    };
  },
};

// "New message": a name (suggested from the people the page knows, and whoever the server
// says the typed name is), then the direct conversation opens, whether they are online or not.
export const NewMessage = {
  setup() {
    const open = ref(false);
    const name = ref('');
    const error = ref('');
    const busy = ref(false);
    const active = ref(-1); // the suggestion chosen with the arrow keys
    const input = ref(null);
    let asking = 0;

    const suggestions = () => {
      const typed = name.value.trim().toLocaleLowerCase();
      if (!typed) return [];
      return knownNames()
        .filter((n) => n.toLocaleLowerCase().startsWith(typed))
        .slice(0, SUGGESTIONS);
    };
    const start = (who) => {
      open.value = false;
      name.value = '';
      error.value = '';
      openDm(who);
    };
    // The server is asked whether a typed name is someone, so it can be suggested.
    const onInput = (e) => {
      name.value = e.target.value;
      error.value = '';
      active.value = -1;
      const typed = name.value.trim();
      const serial = ++asking;
      if (typed) {
        setTimeout(() => serial === asking && findPerson(typed), 250);
      }
    };
    const submit = async (e) => {
      e.preventDefault();
      const list = suggestions();
      if (active.value >= 0 && active.value < list.length) return start(list[active.value]);
      const typed = name.value.trim();
      if (!typed) return;
      const known = list.find((n) => n.toLocaleLowerCase() === typed.toLocaleLowerCase());
      if (known) return start(known);
      busy.value = true;
      const found = await findPerson(typed);
      busy.value = false;
      if (found) start(found);
      else error.value = 'Nobody is called ' + typed + '.';
    };
    const onKeydown = (e) => {
      const count = suggestions().length;
      if (e.key === 'ArrowDown' && count) {
        e.preventDefault();
        active.value = (active.value + 1) % count;
      } else if (e.key === 'ArrowUp' && count) {
        e.preventDefault();
        active.value = (active.value - 1 + count) % count;
      } else if (e.key === 'Escape') {
        open.value = false;
      }
    };
    watch(open, (now) => now && setTimeout(() => input.value && input.value.focus()));

    return () => {
      const toggle = h(
        'button',
        {
          type: 'button',
          class: 'new-message',
          'aria-expanded': String(open.value),
          'aria-controls': 'new-message-form',
          onClick: () => (open.value = !open.value),
        },
        'New message',
      );
      if (!open.value) return h('div', { class: 'new-message-box' }, [toggle]);
      const list = suggestions();
      const expanded = list.length > 0;
      const optionId = (i) => 'new-message-option-' + i;
      return h('div', { class: 'new-message-box' }, [
        toggle,
        h('form', { id: 'new-message-form', class: 'new-message-form', onSubmit: submit }, [
          h('label', { for: 'new-message-to' }, 'To (a person’s name)'),
          h('div', { class: 'inline' }, [
            h('input', {
              id: 'new-message-to',
              ref: input,
              type: 'text',
              role: 'combobox',
              autocomplete: 'off',
              autocapitalize: 'none',
              spellcheck: false,
              value: name.value,
              'aria-autocomplete': 'list',
              'aria-expanded': String(expanded),
              'aria-controls': 'new-message-options',
              'aria-activedescendant':
                expanded && active.value >= 0 ? optionId(active.value) : null,
              'aria-invalid': error.value ? 'true' : null,
              'aria-describedby': error.value ? 'new-message-error' : null,
              onInput,
              onKeydown,
            }),
            h('button', { type: 'submit', disabled: busy.value }, 'Open'),
          ]),
          h(
            'ul',
            {
              id: 'new-message-options',
              class: 'suggestions',
              role: 'listbox',
              'aria-label': 'People',
            },
            list.map((who, i) =>
              h(
                'li',
                {
                  key: who,
                  id: optionId(i),
                  role: 'option',
                  class: { active: i === active.value },
                  'aria-selected': String(i === active.value),
                  onMousedown: (e) => e.preventDefault(), // keep the focus in the input
                  onClick: () => start(who),
                },
                [h('span', who), presenceDot(who)],
              ),
            ),
          ),
          error.value
            ? h('p', { id: 'new-message-error', class: 'field-error', role: 'alert' }, error.value)
            : null,
        ]),
      ]);
    };
  },
};
