// Where the client finds the sync server. Pure functions here; no DOM access.
//
// Order, for each URL: the runtime file `config.json` served next to index.html, then the
// build-time variables VITE_HTTP_API_URL / VITE_WEBSOCKET_URL, then the page's own origin
// (what the local server gives: it serves the client, the API and the poke socket on one
// port). When only the HTTP API URL is set, the poke socket is assumed to live beside it
// (`/api/replicache/poke` on the same host), as with a local server on another origin.

export const POKE_PATH = '/api/replicache/poke';

const nonEmpty = (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const stripSlash = (u) => u.replace(/\/+$/, '');

/**
 * @param {object} sources
 * @param {object} [sources.file] parsed config.json (anything else is ignored)
 * @param {Record<string, string|undefined>} [sources.env] import.meta.env
 * @param {{origin: string, protocol: string, host: string}} sources.location
 * @returns {{httpApiUrl: string, webSocketUrl: string, source: string}}
 */
export function resolveConfig({ file, env = {}, location }) {
  const f = file && typeof file === 'object' && !Array.isArray(file) ? file : {};
  const fromFile = nonEmpty(f.httpApiUrl);
  const fromEnv = nonEmpty(env.VITE_HTTP_API_URL);
  const httpApiUrl = stripSlash(fromFile ?? fromEnv ?? location.origin);
  const wsFromFile = nonEmpty(f.webSocketUrl);
  const wsFromEnv = nonEmpty(env.VITE_WEBSOCKET_URL);
  let webSocketUrl = wsFromFile ?? wsFromEnv;
  if (!webSocketUrl) {
    const base = fromFile || fromEnv ? new URL(httpApiUrl) : location;
    const scheme = base.protocol === 'https:' ? 'wss:' : 'ws:';
    webSocketUrl = `${scheme}//${base.host}${POKE_PATH}`;
  }
  const source =
    fromFile || wsFromFile ? 'config.json' : fromEnv || wsFromEnv ? 'build' : 'page origin';
  return { httpApiUrl, webSocketUrl: stripSlash(webSocketUrl), source };
}

/**
 * Reads `config.json`; a missing, empty or unreadable file counts as `{}`.
 * @param {string} url
 * @param {typeof fetch} [fetchImpl]
 */
export async function fetchConfigFile(url, fetchImpl = globalThis.fetch) {
  try {
    const res = await fetchImpl(url, { cache: 'no-store' });
    if (!res.ok) return {};
    const text = await res.text();
    if (text.trim() === '') return {};
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

const truthy = (v) => v !== undefined && v !== null && !/^(0|false|no|off)$/i.test(String(v).trim());

/**
 * Per-page options from the query string (and build flags).
 * - `?pullInterval=off` disables periodic pulls (pokes and reconnects still pull);
 *   `?pullInterval=5000` sets it in ms. Default: Replicache's 60 s.
 * - `?wrongIncrement` (or `=1`), or the build flag VITE_WRONG_INCREMENT=1: the tutorial's
 *   challenge, a client mutator that adds twice the delta; the server's result wins.
 * @param {string} search location.search
 * @param {Record<string, string|undefined>} [env]
 * @param {object} [file] parsed config.json
 */
export function pageOptions(search, env = {}, file = {}) {
  const q = new URLSearchParams(search);
  let pullInterval = 60_000;
  const pi = q.get('pullInterval');
  if (pi !== null) {
    if (/^(off|none|null|0)$/i.test(pi.trim())) pullInterval = null;
    else if (Number.isFinite(Number(pi)) && Number(pi) > 0) pullInterval = Number(pi);
  }
  const wrongIncrement = q.has('wrongIncrement')
    ? q.get('wrongIncrement') === '' || truthy(q.get('wrongIncrement'))
    : truthy(env.VITE_WRONG_INCREMENT ?? undefined) || file?.wrongIncrement === true;
  return { pullInterval, wrongIncrement };
}
