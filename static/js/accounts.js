// Accounts on the page: whether the cookie still holds a session (GET /api/v1/me), the entry
// form's three ways in (sign in, create an account, join as a guest), signing out, the list of
// this account's sessions, and what happens when a session ends while the page is open.
import { api } from './api.js';
import { sendIdentifyingJoin } from './joining.js';
import { createPasskey, getPasskey } from './passkeys.js';
import * as change from './state/index.js';
import { session, state } from './state/index.js';

const ENDED =
  'Your session has ended (signed out elsewhere, expired, or ended by an administrator). ' +
  'Sign in again to carry on: what you were writing is kept.';

// What the API's error codes (docs/accounts.md) mean to the person at the form, and the field
// each is shown beside. A code not listed shows the server's reason, under the form.
const FIELD_OF = {
  invalid_username: 'username',
  name_taken: 'username',
  name_registered: 'username',
  username_taken: 'username',
  invalid_email: 'email',
  password_too_short: 'password',
  password_too_long: 'password',
  weak_password: 'password',
  invalid_login: 'password',
  invite_required: 'invite',
  invalid_invite: 'invite',
};
const TEXT_OF = {
  invalid_login: 'Wrong username or password.',
  login_throttled: 'Too many attempts.', // the form adds "Try again in N s."
  registration_closed:
    'This chat is not taking new accounts. Ask an administrator to create one for you.',
  invite_required: 'Creating an account here needs an invite code: ask an administrator.',
  invalid_invite: 'That invite code is not valid: unknown, used already, or expired.',
  name_taken: 'That name belongs to an account already. Choose another, or sign in.',
  name_registered: 'That name belongs to an account. Sign in to use it, or choose another.',
  weak_password: 'That password is one of the most common ones. Choose another.',
  account_disabled: 'This account is disabled. Ask an administrator.',
  sign_in_required: 'This chat is for members: sign in, or create an account.',
  invalid_passkey: 'That passkey does not sign in here. Try another, or your password.',
  invalid_challenge: 'That took too long, or was already used. Try again.',
  passkey_taken: 'That passkey is registered already.',
  last_sign_in: 'This passkey is your only way to sign in: add another one before deleting it.',
};

export function reasonFor({ code, reason }) {
  return TEXT_OF[code] || (typeof reason === 'string' && reason) || String(code);
}

export function fieldFor(code) {
  return FIELD_OF[code] || null;
}

// Other tabs of this browser share the cookie: one that signs in tells the others, and those
// at the entry form follow it into the chat (not one chatting as a guest: it stays so).
const channel = 'BroadcastChannel' in window ? new BroadcastChannel('chat-account') : null;
if (channel) {
  channel.onmessage = (event) => {
    if (event.data === 'signed-in' && state.auth.phase === 'out' && state.me === null) {
      checkSession(true);
    }
  };
}

// ---- is this browser signed in? ------------------------------------------------------------

let checking = null;

// Asks GET /me once at a time. `reopen`: the cookie changed since the socket opened.
export function checkSession(reopen = false) {
  if (!checking) checking = askMe(reopen).finally(() => (checking = null));
  return checking;
}

async function askMe(reopen) {
  const r = await api('GET', '/me');
  if (r.ok && r.data.account) return enter(r.data.account, reopen);
  if (r.status === 401 || r.status === 403) return change.sessionChecked({ account: null });
  // A server without the accounts API: only guests join there.
  if (r.status === 404) return change.sessionChecked({ account: null, accounts: false });
  // Unreachable or failing: the form for now, and asked again when the socket opens.
  change.sessionChecked({ account: null, reached: false });
}

// Signed in: on with the chat, unless another account's conversations are still in this page.
function enter(account, reopen) {
  if (!change.samePerson(account)) {
    location.reload(); // nothing of the other account stays in memory
    return;
  }
  change.sessionChecked({ account });
  if (reopen) session.conn.reopen(); // its onOpen sends the join
  else if (session.conn.isOpen) sendIdentifyingJoin();
}

// A socket opened: the join goes out once we know who we are. An account's session is asked
// after again each reconnect: it may have expired or been ended meanwhile.
export async function socketReady() {
  if (!session.checked) return checkSession();
  const { identity } = session;
  if (!identity) return undefined;
  if (!identity.account || session.verified) return sendIdentifyingJoin();
  const serial = session.serial;
  const r = await api('GET', '/me');
  if (serial !== session.serial || session.identity !== identity) return undefined; // gone
  if (r.status === 401) return sessionEnded(true);
  if (r.ok && r.data.account && r.data.account.id !== state.auth.account.id) {
    location.reload(); // another tab signed in as someone else: this cookie is theirs now
    return undefined;
  }
  change.sessionVerified();
  return sendIdentifyingJoin();
}

// The session is over while the page is open (the socket closed with 4003, or the API said
// 401): back to the sign-in form, the drafts kept, and a new socket without the session. The
// server refuses an upgrade carrying a dead session cookie, and clears that cookie when
// answering the API: GET /me first (`asked`: it was just asked).
export async function sessionEnded(asked = false) {
  if (state.auth.phase !== 'in' || signingOut) return;
  change.sessionEnded(ENDED);
  session.conn.hold();
  if (!asked) await api('GET', '/me');
  session.conn.reopen();
}

// A signed-in page's socket could not open: the server is away, or refused the session.
export async function upgradeFailed() {
  if (state.auth.phase !== 'in' || signingOut) return;
  const r = await api('GET', '/me');
  if (r.status === 401) sessionEnded(true);
}

// An account's identifying join was refused: its session may be gone; if not, the reason.
export async function accountJoinRefused(code, reason) {
  const r = await api('GET', '/me');
  if (r.status === 401) return sessionEnded(true);
  change.sessionEnded('');
  change.formRefused(fieldFor(code), reasonFor({ code, reason }));
  return undefined;
}

// ---- the entry form -------------------------------------------------------------------------

function refused(r) {
  const { code } = r.data;
  const retry = code === 'login_throttled' ? Math.max(1, Math.ceil(r.data.retry_after || 1)) : 0;
  change.formRefused(fieldFor(code), reasonFor(r.data), retry);
  if (code === 'registration_closed' || code === 'invite_required') focusField(fieldFor(code));
}

function focusField(field) {
  // after Vue has drawn the field the error is about (an invite field may be new)
  setTimeout(() => {
    const el = document.getElementById('join-' + (field || 'username'));
    if (el) el.focus();
  });
}

// Checks what the server would refuse anyway, to answer at once; true if the form may go.
function filledIn(mode) {
  const { username, password, email } = state.form;
  if (!username.trim()) {
    change.setFormError('username', mode === 'signin' ? 'Enter your username.' : 'Choose a username.');
    return false;
  }
  if (mode !== 'guest' && !password) {
    change.setFormError('password', mode === 'signin' ? 'Enter your password.' : 'Choose a password.');
    return false;
  }
  if (mode !== 'signin' && email.trim() && !/^[^\s@]+@[^\s@]+$/u.test(email.trim())) {
    change.setFormError('email', 'That does not look like an email address.');
    return false;
  }
  return true;
}

export async function submitEntry() {
  const { mode } = state.form;
  if (state.form.busy || !filledIn(mode)) return;
  const username = state.form.username.trim();
  if (mode === 'guest') {
    change.identifying(username, state.form.email.trim());
    if (session.conn.isOpen) sendIdentifyingJoin(); // else onOpen sends it
    return;
  }
  const { password } = state.form;
  change.formSent();
  if (mode === 'register') {
    const body = { username, password };
    if (state.form.email.trim()) body.email = state.form.email.trim();
    if (state.form.invite.trim()) body.invite = state.form.invite.trim();
    const created = await api('POST', '/accounts', body);
    if (!created.ok) return refused(created);
  }
  const r = await api('POST', '/sessions', { username, password });
  if (!r.ok) {
    if (mode === 'register') change.setFormMode('signin'); // the account exists now
    return refused(r);
  }
  signedInHere(r.data.account);
  return undefined;
}

// ---- passkeys at the entry form ----------------------------------------------------------------

// Sign in with a passkey: any of this site's, which the browser offers, whatever name is typed.
// Never by name: for a name without passkeys the server answers decoy ids (docs/accounts.md),
// and the browser would wait for a security key that holds none, up to the ceremony's timeout.
export async function passkeySignIn() {
  if (state.form.busy) return undefined;
  change.formSent();
  const begun = await api('POST', '/passkey-challenges', { purpose: 'signin' });
  if (!begun.ok) return refused(begun);
  const used = await getPasskey(begun.data.options);
  if (!used.ok) return change.formRefused(null, used.text);
  const r = await api('POST', '/passkey-sessions', { credential: used.credential });
  if (!r.ok) return refused(r);
  return signedInHere(r.data.account);
}

// Create an account whose way in is a passkey (no password).
export async function passkeySignUp() {
  if (state.form.busy) return undefined;
  const username = state.form.username.trim();
  if (!username) return change.setFormError('username', 'Choose a username.');
  const body = { purpose: 'signup', username };
  if (state.form.email.trim()) body.email = state.form.email.trim();
  if (state.form.invite.trim()) body.invite = state.form.invite.trim();
  change.formSent();
  const begun = await api('POST', '/passkey-challenges', body);
  if (!begun.ok) return refused(begun);
  const made = await createPasskey(begun.data.options);
  if (!made.ok) return change.formRefused(null, made.text);
  const r = await api('POST', '/passkey-accounts', { credential: made.credential });
  if (!r.ok) return refused(r);
  return signedInHere(r.data.account);
}

function signedInHere(account) {
  enter(account, true);
  if (channel) channel.postMessage('signed-in');
}

// ---- the account dialog's passkeys -------------------------------------------------------------

export async function loadPasskeys() {
  change.passkeysLoading();
  const r = await api('GET', '/passkeys');
  if (r.status === 401) return sessionEnded(true);
  if (!r.ok) return change.passkeysFailed(reasonFor(r.data));
  return change.passkeysListed(Array.isArray(r.data.passkeys) ? r.data.passkeys : []);
}

export async function addPasskey() {
  if (state.passkeys.busy) return undefined;
  change.passkeysBusy(true);
  const begun = await api('POST', '/passkey-challenges', { purpose: 'add' });
  if (begun.status === 401) return sessionEnded(true);
  if (!begun.ok) return change.passkeysFailed(reasonFor(begun.data));
  const made = await createPasskey(begun.data.options);
  if (!made.ok) return change.passkeysFailed(made.text);
  const r = await api('POST', '/passkeys', { credential: made.credential });
  if (r.status === 401) return sessionEnded(true);
  if (!r.ok) return change.passkeysFailed(reasonFor(r.data));
  change.passkeysBusy(false, 'Passkey added: you can sign in with it now.');
  return loadPasskeys();
}

export async function deletePasskey(id) {
  if (state.passkeys.busy) return undefined;
  change.passkeysBusy(true);
  const r = await api('DELETE', '/passkeys/' + encodeURIComponent(id));
  if (r.status === 401) return sessionEnded(true);
  if (!r.ok && r.status !== 404) return change.passkeysFailed(reasonFor(r.data));
  change.passkeysBusy(false, 'Passkey deleted.');
  return loadPasskeys();
}

// ---- signing out, and the account's sessions --------------------------------------------------

let signingOut = false;

// Ends this browser's session and starts the page afresh: nothing of the account stays in it.
export async function signOut() {
  signingOut = true; // the socket's 4003 that follows is expected
  const r = await api('DELETE', '/sessions/current');
  if (!r.ok && r.status !== 401) {
    signingOut = false;
    change.sessionsFailed(reasonFor(r.data));
    return;
  }
  location.reload();
}

export async function loadSessions() {
  change.sessionsLoading();
  const r = await api('GET', '/sessions');
  if (r.status === 401) return sessionEnded(true);
  if (!r.ok) return change.sessionsFailed(reasonFor(r.data));
  const list = Array.isArray(r.data.sessions) ? r.data.sessions : [];
  return change.sessionsListed(list, typeof r.data.current === 'string' ? r.data.current : '');
}

export async function endSession(id) {
  const r = await api('DELETE', '/sessions/' + encodeURIComponent(id));
  if (r.status === 401) return sessionEnded(true);
  if (!r.ok && r.status !== 404) return change.sessionsFailed(reasonFor(r.data));
  return loadSessions();
}

export function openAccount() {
  change.sessionsOpen(true);
  loadSessions();
  loadPasskeys();
}

export function closeAccount() {
  change.sessionsOpen(false);
}
