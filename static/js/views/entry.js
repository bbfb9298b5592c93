// The way in: sign in, create an account (with an invite code when the server asks for one),
// or join as a guest; one form whose mode the buttons under it switch. Each error shows
// beside the field it is about, and a session that ended while the page was open says so.
import { passkeySignIn, passkeySignUp, submitEntry } from '../actions.js';
import { usesGravatar } from '../avatar.js';
import { passkeysSupported } from '../passkeys.js';
import { setFormField, setFormMode, state } from '../state/index.js';
import { h, nextTick } from '../vue.js';
import { field } from './parts.js';

const TITLE = { signin: 'Sign in', register: 'Create an account', guest: 'Join as a guest' };
const SUBMIT = { signin: 'Sign in', register: 'Create account', guest: 'Join' };
const BUSY = { signin: 'Signing in…', register: 'Creating…', guest: 'Joining…' };
const PASSKEY = { signin: 'Sign in with a passkey', register: 'Create account with a passkey' };
const SWITCH = {
  signin: 'Sign in with an account',
  register: 'Create an account',
  guest: 'Continue as a guest',
};

// The form's own error (not a field's). A throttled sign-in counts down to its next try on
// the screen; a screen reader hears the wait once, not a change every second.
function formError(form) {
  if (!form.error || form.error.field) return null;
  const { text } = form.error;
  if (!form.retryUntil) return h('p', { id: 'join-error', class: 'field-error', role: 'alert' }, text);
  const seconds = Math.max(0, Math.ceil((form.retryUntil - state.now) / 1000));
  return h('div', [
    h('p', { class: 'sr-only', role: 'alert' }, text + ' Try again in ' + form.retryAfter + ' s.'),
    h(
      'p',
      { id: 'join-error', class: 'field-error', 'aria-hidden': 'true' },
      text + (seconds > 0 ? ' Try again in ' + seconds + ' s.' : ' You can try again now.'),
    ),
  ]);
}

function switchTo(mode) {
  setFormMode(mode);
  nextTick(() => {
    const first = document.getElementById('join-username');
    if (first) first.focus();
  });
}

export const EntryForm = {
  setup() {
    const form = state.form;
    const errorFor = (name) => (form.error && form.error.field === name ? form.error.text : '');
    const input = (name, attrs, hint) => {
      const id = 'join-' + name;
      const described = [errorFor(name) && id + '-error', hint && id + '-hint'].filter(Boolean);
      return h('input', {
        id,
        name,
        value: form[name],
        onInput: (e) => setFormField(name, e.target.value),
        'aria-invalid': errorFor(name) ? 'true' : null,
        'aria-describedby': described.join(' ') || null,
        ...attrs,
      });
    };
    return () => {
      const { mode } = form;
      const account = mode !== 'guest';
      const modes = ['signin', 'register', 'guest'].filter(
        (m) =>
          m !== mode &&
          (m === 'guest'
            ? state.auth.guests
            : state.auth.accounts && (m !== 'register' || state.auth.registration !== 'closed')),
      );
      const inviteShown = mode === 'register' && form.inviteAsked;
      return h(
        'form',
        {
          class: 'join-form',
          novalidate: true, // the server's reasons, shown beside the field, say more
          'aria-labelledby': 'join-title',
          onSubmit: (e) => {
            e.preventDefault();
            submitEntry();
          },
        },
        [
          h('h2', { id: 'join-title' }, TITLE[mode]),
          state.auth.notice && mode === 'signin'
            ? h('p', { class: 'entry-notice', role: 'status' }, state.auth.notice)
            : null,
          field(
            'join-username',
            'Username',
            input('username', {
              type: 'text',
              autocomplete: 'username',
              autocapitalize: 'none',
              spellcheck: false,
              required: true,
              autofocus: true,
            }),
            errorFor('username'),
          ),
          account
            ? field(
                'join-password',
                'Password',
                input(
                  'password',
                  {
                    type: 'password',
                    autocomplete: mode === 'register' ? 'new-password' : 'current-password',
                    required: true,
                  },
                  mode === 'register',
                ),
                errorFor('password'),
                mode === 'register' ? 'At least 8 characters; not a common password.' : '',
              )
            : null,
          // With drawn avatars (the server's default) an email would serve nothing: not asked.
          usesGravatar && mode !== 'signin'
            ? field(
                'join-email',
                'Email (optional, only for your Gravatar picture)',
                input('email', { type: 'email', autocomplete: 'email' }),
                errorFor('email'),
              )
            : null,
          inviteShown
            ? field(
                'join-invite',
                'Invite code',
                input('invite', { type: 'text', autocomplete: 'off', spellcheck: false }),
                errorFor('invite'),
              )
            : null,
          // The invite error shows beside the field it brings, once that is drawn.
          formError(form) ||
            (errorFor('invite') && !inviteShown
              ? h('p', { class: 'field-error', role: 'alert' }, errorFor('invite'))
              : null),
          h(
            'button',
            { type: 'submit', class: 'primary', disabled: form.busy },
            form.busy ? BUSY[mode] : SUBMIT[mode],
          ),
          // Instead of the password: the browser asks for a passkey (docs/accounts.md).
          account && passkeysSupported && state.auth.accounts
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'passkey',
                  disabled: form.busy,
                  onClick: mode === 'signin' ? passkeySignIn : passkeySignUp,
                },
                PASSKEY[mode],
              )
            : null,
          modes.length
            ? h('div', { class: 'entry-modes' }, [
                h('span', { class: 'muted' }, 'or'),
                ...modes.map((m) =>
                  h('button', { type: 'button', onClick: () => switchTo(m) }, SWITCH[m]),
                ),
              ])
            : null,
        ],
      );
    };
  },
};
