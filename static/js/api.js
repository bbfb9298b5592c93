// The accounts API (/api/v1, JSON both ways; docs/accounts.md). The session itself travels in
// the HttpOnly `chat_session` cookie, which the page never reads: a same-origin fetch sends it,
// and so does the socket's upgrade. Every call resolves, never throws: to
// {ok, status, data}, where a failure's data is the server's {code, reason, retry_after?} or,
// when no JSON came back, one made here (status 0: the server could not be reached).

const BASE = '/api/v1';

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (_) {
    return failure(0, 'unreachable', 'The server cannot be reached. Check your connection.');
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (_) {
      data = null; // a proxy's HTML error page, or an empty body
    }
  }
  if (response.ok) return { ok: true, status: response.status, data: data || {} };
  if (!data || typeof data.code !== 'string') {
    return failure(response.status, 'http_' + response.status,
      'The server answered ' + response.status + ' ' + response.statusText + '.');
  }
  if (response.status === 429 && !Number.isFinite(data.retry_after)) {
    const header = Number(response.headers.get('Retry-After'));
    if (Number.isFinite(header)) data.retry_after = header;
  }
  return { ok: false, status: response.status, data };
}

function failure(status, code, reason) {
  return { ok: false, status, data: { code, reason } };
}
