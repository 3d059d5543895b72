// The API under /api/v1: JSON in and out; the session cookie goes by
// itself. A 401 anywhere sends the page back to the sign-in form.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.field = body?.field;
    this.body = body;
  }
}

let onSignedOut = () => {};
export function whenSignedOut(f) { onSignedOut = f; }

export async function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`/api/v1${path}`, init);
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) {
    const e = new ApiError(r.status, data);
    e.retryAfter = Number(r.headers.get('Retry-After') || 0);
    if (r.status === 401 && path !== '/session') onSignedOut();
    throw e;
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const patch = (path, body) => call('PATCH', path, body);
export const del = (path) => call('DELETE', path);

/** The events stream; `handlers` by event name. Reconnects by itself. */
export function listen(handlers) {
  const es = new EventSource('/api/v1/events');
  for (const [name, f] of Object.entries(handlers)) {
    es.addEventListener(name, (ev) => {
      let data = null;
      try { data = JSON.parse(ev.data); } catch { data = null; }
      f(data);
    });
  }
  es.onerror = () => handlers.reconnecting?.();
  return es;
}
