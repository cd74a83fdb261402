import { Replicache } from 'replicache';
import './style.css';
import { fetchConfigFile, pageOptions, resolveConfig } from './config.js';
import { COUNT_KEY, makeMutators } from './mutators.js';
import { connectPokes } from './poke.js';

const BASE = import.meta.env.BASE_URL; // '/' unless built with --base
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- event log

const MAX_LOG = 60;
const logList = $('log');

function log(kind, text) {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  const time = document.createElement('time');
  const now = new Date();
  time.textContent =
    now.toLocaleTimeString([], { hour12: false }) +
    '.' +
    String(now.getMilliseconds()).padStart(3, '0');
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.textContent = kind;
  const msg = document.createElement('span');
  msg.className = 'msg';
  msg.textContent = text;
  li.append(time, tag, msg);
  logList.prepend(li);
  while (logList.children.length > MAX_LOG) logList.lastElementChild.remove();
}
$('clear-log').addEventListener('click', () => logList.replaceChildren());

function showError(text, retry) {
  $('error-text').textContent = text;
  $('error').hidden = false;
  $('status').dataset.online = 'false';
  $('status-label').textContent = 'Unreachable';
  $('retry').onclick = retry;
}

// ---------------------------------------------------------------- server calls

async function postJSON(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

// ---------------------------------------------------------------- routing

async function main() {
  const file = await fetchConfigFile(`${BASE}config.json`);
  const config = resolveConfig({ file, env: import.meta.env, location });
  const options = pageOptions(location.search, import.meta.env, file);
  const api = `${config.httpApiUrl}/api/replicache`;

  const rel = location.pathname.startsWith(BASE)
    ? location.pathname.slice(BASE.length)
    : location.pathname.replace(/^\//, '');
  const match = rel.match(/^space\/([^/]+)\/?$/);

  if (rel === '' || rel === 'index.html') {
    await createSpaceAndGo(api);
    return;
  }
  if (!match) {
    location.replace(BASE + location.search);
    return;
  }
  let spaceID;
  try {
    spaceID = decodeURIComponent(match[1]);
  } catch {
    spaceID = '';
  }
  // The server's rule for space IDs; anything else cannot exist.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(spaceID)) {
    location.replace(BASE + location.search);
    return;
  }
  let exists;
  try {
    const { status, json } = await postJSON(`${api}/spaceExists`, { spaceID });
    if (status === 200 && typeof json?.spaceExists === 'boolean') exists = json.spaceExists;
    else if (status >= 400 && status < 500) exists = false; // e.g. an ID the server refuses
    else throw new Error(`spaceExists answered ${status}`);
  } catch (e) {
    showError(`Cannot reach the sync server at ${config.httpApiUrl} (${e.message}).`, () =>
      location.reload(),
    );
    return;
  }
  if (!exists) {
    location.replace(BASE + location.search);
    return;
  }
  startCounter({ spaceID, config, options, api });
}

async function createSpaceAndGo(api) {
  $('space-id').textContent = 'creating…';
  try {
    const { status, json } = await postJSON(`${api}/createSpace`, {});
    if (status !== 200 || typeof json?.spaceID !== 'string') {
      throw new Error(json?.message ?? `createSpace answered ${status}`);
    }
    location.replace(`${BASE}space/${encodeURIComponent(json.spaceID)}${location.search}`);
  } catch (e) {
    showError(`Could not create a space: ${e.message}`, () => location.reload());
  }
}

// ---------------------------------------------------------------- the counter

function startCounter({ spaceID, config, options, api }) {
  const q = encodeURIComponent(spaceID);
  $('space-id').textContent = spaceID;
  $('server').textContent = config.httpApiUrl.replace(/^https?:\/\//, '');
  $('server').title = `HTTP ${config.httpApiUrl}\nWebSocket ${config.webSocketUrl}\n(from ${config.source})`;
  $('pull-interval').textContent =
    options.pullInterval === null ? 'off (pokes only)' : `every ${options.pullInterval / 1000} s`;
  $('challenge').hidden = !options.wrongIncrement;
  document.title = `Counter · ${spaceID.slice(0, 8)}`;

  const copy = $('copy-link');
  copy.hidden = !navigator.clipboard;
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(location.origin + location.pathname);
      copy.textContent = 'Copied';
      setTimeout(() => (copy.textContent = 'Copy link'), 1500);
    } catch {
      // clipboard refused; the URL bar has it anyway
    }
  });

  const rep = new Replicache({
    name: `counter-${spaceID}`,
    pushURL: `${api}/push?spaceID=${q}`,
    pullURL: `${api}/pull?spaceID=${q}`,
    pullInterval: options.pullInterval,
    mutators: makeMutators({ wrongIncrement: options.wrongIncrement }),
    logLevel: 'error',
  });

  // Log every push and pull by wrapping the default fetchers (they still use the URLs).
  const defaultPusher = rep.pusher;
  rep.pusher = async (body, requestID) => {
    const n = body.mutations?.length ?? 0;
    try {
      const result = await defaultPusher(body, requestID);
      const status = result.httpRequestInfo.httpStatusCode;
      const err = result.response?.error ? ` ${result.response.error}` : '';
      log('push', `${n} mutation${n === 1 ? '' : 's'} → ${status}${err}`);
      return result;
    } catch (e) {
      log('push', `${n} mutation${n === 1 ? '' : 's'} failed: ${e.message}`);
      throw e;
    }
  };
  const defaultPuller = rep.puller;
  rep.puller = async (body, requestID) => {
    try {
      const result = await defaultPuller(body, requestID);
      const status = result.httpRequestInfo.httpStatusCode;
      const r = result.response;
      if (status === 200 && r && 'cookie' in r) {
        const changed = r.patch?.length ?? 0;
        log(
          'pull',
          changed || r.cookie !== body.cookie
            ? `cookie ${body.cookie ?? 'null'} → ${r.cookie}, ${changed} change${changed === 1 ? '' : 's'}`
            : `cookie ${r.cookie}, nothing new`,
        );
      } else {
        log('pull', `→ ${status}${r?.error ? ` ${r.error}` : ''}`);
      }
      return result;
    } catch (e) {
      log('pull', `failed: ${e.message}`);
      throw e;
    }
  };

  // Online indicator: Replicache's own view (did the last push/pull succeed?).
  const setOnline = (online) => {
    const status = $('status');
    status.dataset.online = String(online);
    $('status-label').textContent = online ? 'Online' : 'Offline';
  };
  setOnline(rep.online);
  rep.onOnlineChange = (online) => {
    setOnline(online);
    log(online ? 'online' : 'offline', online ? 'sync is reaching the server' : 'sync cannot reach the server');
  };

  const countEl = $('count');
  rep.subscribe((tx) => tx.get(COUNT_KEY), (count) => {
    const value = count ?? 0;
    countEl.textContent = String(value);
    countEl.dataset.count = String(value);
    countEl.classList.remove('bump');
    void countEl.offsetWidth; // restart the animation
    countEl.classList.add('bump');
  });

  const button = $('increment');
  button.disabled = false;
  button.addEventListener('click', () => {
    rep.mutate.increment(1).catch((e) => log('error', `increment failed: ${e.message}`));
  });

  const socketState = $('socket-state');
  const setSocket = (state, text = state) => {
    socketState.dataset.state = state;
    socketState.textContent = text;
  };
  const pokes = connectPokes({
    url: config.webSocketUrl,
    spaceID,
    rep,
    onEvent(e) {
      switch (e.type) {
        case 'open':
          setSocket('open', 'connected');
          log('socket', e.reconnect ? 'reconnected; pulling' : 'connected');
          break;
        case 'poke':
          log('poke', 'server says something changed; pulling');
          break;
        case 'close':
          if (e.wasOpen) log('socket', `closed (${e.code})`);
          setSocket('closed', 'reconnecting');
          break;
        case 'retry':
          setSocket('closed', `retry in ${(e.delayMs / 1000).toFixed(1)} s`);
          break;
        case 'connecting':
          if (e.attempt > 1) setSocket('connecting', 'connecting');
          break;
        default:
      }
    },
  });

  // The browser's own network events: show them, and resync at once when back.
  window.addEventListener('offline', () => log('offline', 'the browser lost its network'));
  window.addEventListener('online', () => {
    log('online', 'the browser has a network again; syncing');
    pokes.reconnectNow();
    rep.push({ now: true }).catch(() => {});
    rep.pull({ now: true }).catch(() => {});
  });
  window.addEventListener('pagehide', () => pokes.close());
  // Back from the back/forward cache: the socket was closed on pagehide; start afresh.
  window.addEventListener('pageshow', (e) => e.persisted && location.reload());

  log('info', `space ${spaceID} via ${config.source}`);
}

main().catch((e) => showError(`Something went wrong: ${e.message}`, () => location.reload()));
