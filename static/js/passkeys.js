// Passkeys on the page: the browser's own WebAuthn API (navigator.credentials), no library.
// The server's options come as JSON with binary fields in base64url (docs/api.md); they are
// turned into the ArrayBuffers the browser takes, and its credential back into JSON.
// create() and get() resolve to {ok: true, credential} or {ok: false, cancelled, text}.

export const passkeysSupported =
  typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

function fromB64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  let raw = '';
  for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

function creationOptions(o) {
  return {
    ...o,
    challenge: fromB64url(o.challenge),
    user: { ...o.user, id: fromB64url(o.user.id) },
    excludeCredentials: withIds(o.excludeCredentials),
  };
}

function requestOptions(o) {
  return {
    ...o,
    challenge: fromB64url(o.challenge),
    allowCredentials: withIds(o.allowCredentials),
  };
}

function asJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
  };
}

// What a refusal by the browser means to the person (NotAllowedError covers both "cancelled"
// and "timed out": the browser does not tell them apart, on purpose).
function failed(error) {
  const name = error && error.name;
  if (name === 'NotAllowedError' || name === 'AbortError') {
    return { ok: false, cancelled: true, text: 'No passkey was used (cancelled or timed out).' };
  }
  if (name === 'InvalidStateError') {
    return { ok: false, text: 'This device already holds a passkey for this account.' };
  }
  if (name === 'SecurityError') {
    const text = 'Passkeys do not work on this address: open the chat by its name.';
    return { ok: false, text };
  }
  const detail = (error && error.message) || name;
  return { ok: false, text: 'The passkey could not be used: ' + detail };
}

export async function createPasskey(options) {
  if (!passkeysSupported) return { ok: false, text: 'This browser does not support passkeys.' };
  try {
    const publicKey = creationOptions(options);
    const credential = await navigator.credentials.create({ publicKey });
    return { ok: true, credential: asJSON(credential) };
  } catch (error) {
    return failed(error);
  }
}

export async function getPasskey(options) {
  if (!passkeysSupported) return { ok: false, text: 'This browser does not support passkeys.' };
  try {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    return { ok: true, credential: asJSON(credential) };
  } catch (error) {
    return failed(error);
  }
}
