// Verbs on who we are: the entry form (sign in, create an account, join as a guest), the
// signed-in account, a session that ended while the page was open, and the account dialog's
// list of sessions.
import { session, state } from './store.js';

// ---- the entry form --------------------------------------------------------------------------

export function setFormField(name, value) {
  state.form[name] = value;
}

export function setFormError(field, text) {
  state.form.error = { field, text };
}

export function setFormMode(mode) {
  state.form.mode = mode;
  state.form.error = null;
  state.form.retryUntil = 0;
}

// The form was sent to the API: busy until it answers.
export function formSent() {
  state.form.busy = true;
  state.form.error = null;
  state.form.retryUntil = 0;
}

// The API refused the form: `field` is the input the reason is shown beside (null: the form).
export function formRefused(field, text, retryAfterS) {
  state.form.busy = false;
  state.form.error = { field, text };
  if (field === 'invite') state.form.inviteAsked = true;
  if (retryAfterS > 0) {
    state.form.retryAfter = retryAfterS;
    state.form.retryUntil = Date.now() + retryAfterS * 1000;
    state.now = Date.now();
  }
}

// ---- the account ----------------------------------------------------------------------------

// GET /me answered (`reached` false: it could not be asked; it will be again), and
// `accounts` false when the server has no accounts API.
export function sessionChecked({ account, accounts, reached = true }) {
  session.checked = reached;
  if (account) return signedIn(account);
  if (state.auth.phase === 'checking') state.auth.phase = 'out';
  if (accounts === false) {
    state.auth.accounts = false;
    state.form.mode = 'guest';
  }
}

// Whether signing in as `account` may carry on this page: not when another account's
// conversations and drafts are still in it.
export function samePerson(account) {
  const ended = session.endedAccount;
  return ended === null || ended.id === account.id;
}

// Signed in (or found signed in): the next identifying join is the account's.
export function signedIn(account) {
  state.auth.phase = 'in';
  state.auth.account = { id: account.id, username: account.username, role: account.role };
  state.auth.notice = '';
  session.endedAccount = null;
  session.verified = true;
  session.identity = { username: account.username, email: '', token: null, account: true };
  state.form.password = '';
  state.form.invite = '';
  state.form.error = null;
  state.form.retryUntil = 0;
  // busy until the welcome: the socket is reopened with the cookie first
  state.form.busy = true;
}

// The session ended while the page was open (signed out elsewhere, revoked, expired): back to
// the sign-in form with the name filled in. The conversations, drafts and unsent messages stay
// for the same account to sign in again.
export function sessionEnded(text) {
  const account = state.auth.account;
  if (account) session.endedAccount = account;
  state.auth.phase = 'out';
  state.auth.account = null;
  state.auth.notice = text;
  session.identity = null;
  session.verified = false;
  state.me = null;
  state.sidebarOpen = false;
  state.sessions.open = false;
  state.form.mode = 'signin';
  state.form.busy = false;
  state.form.error = null;
  if (account) state.form.username = account.username;
}

// The socket closed: whether the session still holds is asked again before the next join.
export function sessionUnverified() {
  session.verified = false;
}

export function sessionVerified() {
  session.verified = true;
}

export function guestsRefused() {
  state.auth.guests = false;
}

// ---- the account dialog ---------------------------------------------------------------------

export function sessionsOpen(open) {
  state.sessions.open = open;
  if (open) state.sessions.error = '';
}

export function sessionsLoading() {
  state.sessions.loading = true;
  state.sessions.error = '';
}

export function sessionsListed(list, current) {
  state.sessions.loading = false;
  state.sessions.list = list;
  state.sessions.current = current;
}

export function sessionsFailed(text) {
  state.sessions.loading = false;
  state.sessions.error = text;
}

// ---- the account dialog's passkeys ----------------------------------------------------------

export function passkeysLoading() {
  state.passkeys.loading = true;
  state.passkeys.error = '';
}

export function passkeysListed(list) {
  state.passkeys.loading = false;
  state.passkeys.list = list;
}

// A passkey is being added or deleted: busy until the API answers.
export function passkeysBusy(busy, notice = '') {
  state.passkeys.busy = busy;
  state.passkeys.notice = notice;
  if (busy) state.passkeys.error = '';
}

export function passkeysFailed(text) {
  state.passkeys.loading = false;
  state.passkeys.busy = false;
  state.passkeys.notice = '';
  state.passkeys.error = text;
}
