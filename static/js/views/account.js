// The account dialog (from the top bar's name): who is signed in, signing out, and the
// account's sessions, each other one with a button that ends it. A modal <dialog>: the browser
// keeps the focus in it, Escape closes it, and the focus goes back to the name's button.
import { addPasskey, closeAccount, deletePasskey, endSession, signOut } from '../actions.js';
import { passkeysSupported } from '../passkeys.js';
import { state } from '../state/index.js';
import { h, onMounted, ref } from '../vue.js';

const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// "Chrome on Linux" from a User-Agent string; the whole string is the row's tooltip.
export function describeAgent(ua) {
  if (typeof ua !== 'string' || !ua) return 'Unknown browser';
  const browser = [
    [/Edg\//, 'Edge'],
    [/OPR\//, 'Opera'],
    [/Firefox\//, 'Firefox'],
    [/Chrom(e|ium)\//, 'Chrome'],
    [/Safari\//, 'Safari'],
  ].find(([re]) => re.test(ua));
  const system = [
    [/Android/, 'Android'],
    [/iPhone|iPad/, 'iOS'],
    [/Windows/, 'Windows'],
    [/Mac OS X|Macintosh/, 'macOS'],
    [/CrOS/, 'ChromeOS'],
    [/Linux/, 'Linux'],
  ].find(([re]) => re.test(ua));
  if (!browser) return ua.length > 40 ? ua.slice(0, 40) + '…' : ua;
  return browser[1] + (system ? ' on ' + system[1] : '');
}

function dateOf(ts) {
  return Number.isFinite(ts) ? when.format(new Date(ts)) : '?';
}

function sessionRow(s, current) {
  const here = s.id === current || s.current === true;
  const what = describeAgent(s.user_agent);
  return h('li', { key: s.id, class: ['session', { current: here }] }, [
    h('div', { class: 'session-what' }, [
      h('span', { class: 'session-agent', title: s.user_agent || null }, what),
      here ? h('span', { class: 'session-here' }, ' · this browser') : null,
      h('span', { class: 'muted session-when' }, [
        'Signed in ' + dateOf(s.created_ts) + ', last active ' + dateOf(s.last_seen_ts),
        s.address ? ' · from ' + s.address : '',
      ]),
    ]),
    here
      ? null
      : h(
          'button',
          {
            type: 'button',
            'aria-label': 'Sign out ' + what + (s.address ? ' from ' + s.address : ''),
            onClick: () => endSession(s.id),
          },
          'Sign out',
        ),
  ]);
}

function passkeyRow(p, busy) {
  const used = p.last_used_ts ? 'last used ' + dateOf(p.last_used_ts) : 'not used yet';
  return h('li', { key: p.id, class: 'session passkey-row' }, [
    h('div', { class: 'session-what' }, [
      h('span', { class: 'session-agent' }, p.label || 'Passkey'),
      h('span', { class: 'muted session-when' }, 'Added ' + dateOf(p.created_ts) + ', ' + used),
    ]),
    h(
      'button',
      {
        type: 'button',
        disabled: busy,
        'aria-label': 'Delete passkey ' + (p.label || ''),
        onClick: () => deletePasskey(p.id),
      },
      'Delete',
    ),
  ]);
}

// The passkeys section: the list, each with Delete, and "Add a passkey" (this browser's).
function passkeysSection() {
  const { list, loading, busy, error, notice } = state.passkeys;
  return [
    h('h3', { id: 'passkeys-title' }, 'Your passkeys'),
    error ? h('p', { class: 'field-error', role: 'alert' }, error) : null,
    notice ? h('p', { class: 'muted', role: 'status' }, notice) : null,
    loading && !list.length
      ? h('p', { class: 'muted' }, 'Loading…')
      : list.length
        ? h(
            'ul',
            { class: 'sessions passkeys', 'aria-labelledby': 'passkeys-title' },
            list.map((p) => passkeyRow(p, busy)),
          )
        : h(
            'p',
            { class: 'muted passkeys-empty' },
            'No passkeys yet: add one to sign in without a password.',
          ),
    passkeysSupported
      ? h('button', { type: 'button', disabled: busy, onClick: addPasskey }, 'Add a passkey')
      : h('p', { class: 'muted' }, 'This browser does not support passkeys.'),
  ];
}

export const AccountDialog = {
  setup() {
    const dialog = ref(null);
    onMounted(() => dialog.value && dialog.value.showModal());
    const close = () => dialog.value && dialog.value.close(); // its `close` event does the rest
    return () => {
      const { account } = state.auth;
      const { list, current, loading, error } = state.sessions;
      return h(
        'dialog',
        {
          ref: dialog,
          class: 'account-dialog',
          'aria-labelledby': 'account-title',
          onClose: () => {
            closeAccount();
            const opener = document.querySelector('.topbar .whoami');
            if (opener) opener.focus();
          },
        },
        [
          h('div', { class: 'account-head' }, [
            h('h2', { id: 'account-title' }, 'Your account'),
            h('button', { type: 'button', 'aria-label': 'Close', onClick: close }, '×'),
          ]),
          account
            ? h('p', [
                'Signed in as ',
                h('strong', account.username),
                account.role === 'admin' ? ' (administrator)' : '',
              ])
            : null,
          h('button', { type: 'button', class: 'primary', onClick: signOut }, 'Sign out'),
          h('h3', { id: 'sessions-title' }, 'Your sessions'),
          error ? h('p', { class: 'field-error', role: 'alert' }, error) : null,
          loading && !list.length
            ? h('p', { class: 'muted' }, 'Loading…')
            : h(
                'ul',
                { class: 'sessions', 'aria-labelledby': 'sessions-title', 'aria-busy': String(loading) },
                list.map((s) => sessionRow(s, current)),
              ),
          ...passkeysSection(),
        ],
      );
    };
  },
};
