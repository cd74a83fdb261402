import { Replicache } from 'replicache';
import './style.css';
import {
  SignInRequired,
  TokenSource,
  beginCognitoSignIn,
  bearer,
  cognitoLogoutURL,
  completeCognitoSignIn,
  devSignIn,
  DevSignInUnavailable,
  loadSession,
  refreshCognito,
  replicacheName,
  resolveAuth,
} from './auth.js';
import { fetchConfigFile, pageOptions, resolveConfig } from './config.js';
import { COUNT_KEY, makeMutators } from './mutators.js';
import { connectPokes } from './poke.js';
import { makeSplittingPusher } from './pusher.js';
import { showAccess } from './share.js';

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

function showError(text, retry, status = 'Unreachable') {
  $('error-text').textContent = text;
  $('error').hidden = false;
  $('status').dataset.online = 'false';
  $('status-label').textContent = status;
  $('retry').onclick = retry;
}

// ---------------------------------------------------------------- page state

/** Set once by main(): where the server is, page switches, how to sign in, the session. */
const page = {
  config: null,
  options: null,
  api: '',
  auth: { kind: 'auto' },
  /** @type {TokenSource} */
  tokens: null,
  /** A counter ran on this page: signing in again means a reload. */
  started: false,
  /** Stops the counter (Replicache, poke socket) for good. */
  stop: () => {},
};

const sessionStore = (() => {
  try {
    return window.sessionStorage;
  } catch {
    return undefined; // storage disabled: sign-in lasts as long as the page
  }
})();

// ---------------------------------------------------------------- server calls

async function postJSON(url, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = bearer(token);
  const res = await fetch(url, {
    method: 'POST',
    headers,
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

/**
 * POSTs to an API route with the current token (renewed first when about to expire).
 * A 401 renews the token once and retries; a second 401, or no token to be had, throws
 * `SignInRequired`.
 */
async function callApi(route, body, query = '') {
  const url = `${page.api}/${route}${query}`;
  let token = await page.tokens.fresh();
  let res = await postJSON(url, body, token);
  if (res.status === 401 && token) {
    token = await page.tokens.renew();
    if (token) res = await postJSON(url, body, token);
  }
  if (res.status === 401) {
    throw new SignInRequired(
      token || page.tokens.session ? 'Your sign-in has expired; sign in again.' : undefined,
    );
  }
  return res;
}

// ---------------------------------------------------------------- signing in

function showUser(session) {
  $('user').hidden = !session;
  $('user-label').textContent = session?.label ?? '';
  $('user-label').title = session && session.label !== session.user ? `user ID ${session.user}` : '';
  $('user-avatar').textContent = (session?.label ?? '?').slice(0, 1).toUpperCase();
  document.body.dataset.user = session?.user ?? '';
}

/** Hides everything else and shows the sign-in form (development or Cognito). */
function showSignIn(reason) {
  page.stop();
  $('layout').hidden = true;
  $('no-access').hidden = true;
  $('error').hidden = true;
  $('status').dataset.online = 'unknown';
  $('status-label').textContent = 'Signed out';
  const box = $('signin');
  box.hidden = false;
  $('signin-why').textContent =
    reason && reason !== 'sign-in required' ? reason : 'This server syncs only for signed-in users.';
  const cognito = page.auth.kind === 'cognito';
  $('signin-dev').hidden = cognito;
  $('signin-cognito').hidden = !cognito;
  const err = $('signin-error');
  err.hidden = true;
  if (cognito) {
    $('signin-cognito-button').onclick = async () => {
      try {
        location.assign(
          await beginCognitoSignIn(page.auth.cognito, sessionStore, location.pathname + location.search),
        );
      } catch (e) {
        err.textContent = `Cannot start the sign-in: ${e.message}`;
        err.hidden = false;
      }
    };
    return;
  }
  const name = $('signin-name');
  name.value ||= page.tokens.session?.name ?? '';
  name.focus();
  $('signin-dev').onsubmit = async (ev) => {
    ev.preventDefault();
    const value = name.value.trim();
    if (!value) return;
    const submit = $('signin-submit');
    submit.disabled = true;
    err.hidden = true;
    try {
      page.tokens.set(await devSignIn(page.config.httpApiUrl, value));
    } catch (e) {
      err.textContent =
        e instanceof DevSignInUnavailable || e instanceof SignInRequired
          ? e.message
          : `Cannot reach the sync server at ${page.config.httpApiUrl} (${e.message}).`;
      err.hidden = false;
      return;
    } finally {
      submit.disabled = false;
    }
    if (page.started) {
      location.reload();
      return;
    }
    box.hidden = true;
    $('layout').hidden = false;
    $('status-label').textContent = 'Connecting…';
    await route();
  };
}

function signOut() {
  const session = page.tokens.session;
  page.stop();
  page.tokens.set(null);
  if (session?.provider === 'cognito' && page.auth.kind === 'cognito') {
    location.assign(cognitoLogoutURL(page.auth.cognito));
  } else {
    location.reload();
  }
}
$('sign-out').addEventListener('click', signOut);
$('no-access-switch').addEventListener('click', signOut);

/** A new session for an expired or refused one: sign in again (dev) or refresh (Cognito). */
async function renewSession(session) {
  if (session.provider === 'dev') return devSignIn(page.config.httpApiUrl, session.name ?? session.user);
  if (session.provider === 'cognito' && page.auth.kind === 'cognito') {
    return refreshCognito(page.auth.cognito, session);
  }
  return null;
}

/** The space is hidden from this user (or gone): say so instead of a counter that never loads. */
function showNoAccess(spaceID, why) {
  page.stop();
  $('layout').hidden = true;
  $('signin').hidden = true;
  $('error').hidden = true;
  $('status').dataset.online = 'unknown';
  $('status-label').textContent = 'No access';
  $('no-access').hidden = false;
  $('no-access').dataset.reason = why;
  $('no-access-space').textContent = spaceID;
  $('no-access-user').textContent = page.tokens.session?.label ?? 'nobody';
  $('no-access-new').href = BASE + location.search;
  $('no-access-retry').onclick = () => location.reload();
  document.title = 'No access · Replicache counter';
}

// ---------------------------------------------------------------- routing

async function main() {
  const file = await fetchConfigFile(`${BASE}config.json`);
  page.config = resolveConfig({ file, env: import.meta.env, location });
  page.options = pageOptions(location.search, import.meta.env, file);
  page.api = `${page.config.httpApiUrl}/api/replicache`;
  page.auth = resolveAuth(file.auth, location, BASE);
  page.tokens = new TokenSource({
    session: loadSession(sessionStore),
    renew: renewSession,
    storage: sessionStore,
    onChange: showUser,
  });
  showUser(page.tokens.session);

  if (page.auth.kind === 'cognito') {
    // Back from the hosted UI with ?code=&state=: trade the code, go back where we were.
    try {
      const done = await completeCognitoSignIn(page.auth.cognito, sessionStore, location.search);
      if (done) {
        page.tokens.set(done.session);
        location.replace(done.returnTo);
        return;
      }
    } catch (e) {
      showSignIn(`Sign-in failed: ${e.message}`);
      return;
    }
  }
  if (!page.tokens.session && page.auth.kind !== 'auto') {
    showSignIn();
    return;
  }
  await route();
}

/** Creates a space (at /) or opens the one in the URL; asks for sign-in on a 401. */
async function route() {
  try {
    await openPage();
  } catch (e) {
    if (e instanceof SignInRequired) showSignIn(e.message);
    else throw e;
  }
}

async function openPage() {
  const { config } = page;

  const rel = location.pathname.startsWith(BASE)
    ? location.pathname.slice(BASE.length)
    : location.pathname.replace(/^\//, '');
  const match = rel.match(/^space\/([^/]+)\/?$/);

  if (rel === '' || rel === 'index.html') {
    await createSpaceAndGo();
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
    const { status, json } = await callApi('spaceExists', { spaceID });
    if (status === 200 && typeof json?.spaceExists === 'boolean') exists = json.spaceExists;
    else if (status >= 400 && status < 500) exists = false; // e.g. an ID the server refuses
    else throw new Error(`spaceExists answered ${status}`);
  } catch (e) {
    if (e instanceof SignInRequired) throw e;
    showError(`Cannot reach the sync server at ${config.httpApiUrl} (${e.message}).`, () =>
      location.reload(),
    );
    return;
  }
  if (!exists) {
    // Signed in, a hidden space and an unknown one look the same (the server answers
    // alike): say so. Anonymous (auth mode none): a new space, as the tutorial does.
    if (page.tokens.session) showNoAccess(spaceID, 'spaceExists');
    else location.replace(BASE + location.search);
    return;
  }
  startCounter(spaceID);
}

async function createSpaceAndGo() {
  $('space-id').textContent = 'creating…';
  let answer;
  try {
    answer = await callApi('createSpace', {});
  } catch (e) {
    if (e instanceof SignInRequired) throw e;
    showError(`Could not create a space: cannot reach the sync server (${e.message}).`, () =>
      location.reload(),
    );
    return;
  }
  const { status, json } = answer;
  if (status === 200 && typeof json?.spaceID === 'string') {
    location.replace(`${BASE}space/${encodeURIComponent(json.spaceID)}${location.search}`);
    return;
  }
  // QuotaExceeded (403) and the like: the server's own words.
  $('space-id').textContent = '–';
  showError(
    `Could not create a space: ${json?.message ?? `the server answered ${status}`}`,
    () => location.reload(),
    json?.error === 'QuotaExceeded' ? 'Not allowed' : 'Unreachable',
  );
}

// ---------------------------------------------------------------- the counter

function startCounter(spaceID) {
  const { config, options, api, tokens } = page;
  page.started = true;
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

  const session = tokens.session;
  const rep = new Replicache({
    // Per user as well as per space: two users in one browser profile never share a
    // client group (the server refuses a group to anyone but its first user).
    name: replicacheName(spaceID, session?.user),
    auth: session ? bearer(session.token) : undefined,
    pushURL: `${api}/push?spaceID=${q}`,
    pullURL: `${api}/pull?spaceID=${q}`,
    pullInterval: options.pullInterval,
    mutators: makeMutators({ wrongIncrement: options.wrongIncrement }),
    logLevel: 'error',
  });

  let stopped = false;
  let pokes = null;
  page.stop = () => {
    if (stopped) return;
    stopped = true;
    pokes?.close();
    rep.close().catch(() => {});
    $('increment').disabled = true;
  };

  // A 401 on push or pull: Replicache calls getAuth for a new token and retries.
  rep.getAuth = async () => {
    log('auth', 'the server wants a new token');
    const token = await tokens.renew();
    if (token) {
      log('auth', 'signed in again; retrying');
      return bearer(token);
    }
    if (!tokens.session) showSignIn('Your sign-in has expired; sign in again.');
    return null;
  };
  // A token renewed elsewhere (API calls, the socket) is the one Replicache sends next.
  tokens.onChange = (s) => {
    showUser(s);
    if (s && !stopped) rep.auth = bearer(s.token);
  };

  // 404 on push or pull: the space is gone or hidden from this user (removed as a member,
  // link access closed). Stop and say so rather than retry for ever.
  const refused = (status, result) => {
    if (status === 404 && session) {
      showNoAccess(spaceID, 'sync');
      return true;
    }
    if (status === 403) {
      const message = errorMessage(result) ?? 'the server refused this client';
      log('error', `refused: ${message}`);
    }
    return false;
  };

  // Log every push and pull by wrapping the fetchers (they still use the URLs). Pushes go
  // through the splitting pusher: a backlog larger than one request body syncs in parts.
  const pusher = makeSplittingPusher({ url: () => rep.pushURL, auth: () => rep.auth });
  rep.pusher = async (body, requestID) => {
    const n = body.mutations?.length ?? 0;
    try {
      const result = await pusher(body, requestID);
      const status = result.httpRequestInfo.httpStatusCode;
      const err = result.response?.error ? ` ${result.response.error}` : '';
      log('push', `${n} mutation${n === 1 ? '' : 's'} → ${status}${err}`);
      refused(status, result);
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
        const from = cookieText(body.cookie);
        const to = cookieText(r.cookie);
        log(
          'pull',
          changed || from !== to
            ? `cookie ${from} → ${to}, ${changed} change${changed === 1 ? '' : 's'}`
            : `cookie ${to}, nothing new`,
        );
      } else {
        log('pull', `→ ${status}${r?.error ? ` ${r.error}` : ''}`);
        refused(status, result);
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
  pokes = connectPokes({
    url: config.webSocketUrl,
    spaceID,
    rep,
    // Signed in: `?token=` on every attempt, renewed when about to expire.
    token: session ? () => tokens.fresh() : undefined,
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

  log('info', `space ${spaceID} via ${config.source}${session ? `, signed in as ${session.label}` : ''}`);

  if (session) {
    showAccess({
      spaceID,
      me: session.user,
      callApi,
      onHidden: () => showNoAccess(spaceID, 'spaceAccess'),
      onSignIn: (e) => showSignIn(e.message),
      log,
    });
  }
}

/** A pull cookie for the log: the server's are `{order, sig}` (signed); show the order. */
function cookieText(cookie) {
  if (cookie === null || cookie === undefined) return 'null';
  if (typeof cookie === 'object') return String(cookie.order ?? JSON.stringify(cookie));
  return String(cookie);
}

/** The server's message in a failed push or pull (the default fetchers keep the body text). */
function errorMessage(result) {
  const text = result?.httpRequestInfo?.errorMessage;
  if (!text) return undefined;
  try {
    return JSON.parse(text).message ?? text;
  } catch {
    return text;
  }
}

main().catch((e) => showError(`Something went wrong: ${e.message}`, () => location.reload()));
