// Poke socket: tells Replicache to pull when the server says something changed.
//
// Plain ES module with no browser-only API except a WebSocket constructor, so the web
// client and Node scripts share it. Node 22+ and browsers have a global `WebSocket`;
// on Node 20 pass one in (e.g. `import { WebSocket } from 'ws'`).
//
// Behaviour:
// - opens `url` with `?spaceID=<spaceID>` added, and `&token=<JWT>` when a `token`
//   function is given (browsers cannot set an Authorization header on a WebSocket); the
//   function is asked again before every attempt, so a reconnect carries a fresh token;
// - calls `rep.pull()` on every `poke` text frame and on every (re)connect, so changes
//   made while the socket was down are seen;
// - sends `{"action":"ping"}` every `keepAliveMs` while open (API Gateway closes a
//   WebSocket that is idle for 10 minutes, and every connection after 2 hours);
// - reconnects after any close or failed attempt, with exponential backoff and jitter
//   (`minBackoffMs` doubling up to `maxBackoffMs`), and gives up on an attempt that has
//   not opened after `connectTimeoutMs`;
// - `close()` stops everything for good; `reconnectNow()` skips a pending backoff (call
//   it when the browser says it is back online).

/** The frame the server sends after every committed push. */
export const POKE_MESSAGE = 'poke';
/** The keep-alive the client sends; any text frame resets API Gateway's idle timer. */
export const KEEP_ALIVE_MESSAGE = JSON.stringify({ action: 'ping' });

const DEFAULTS = {
  keepAliveMs: 5 * 60_000,
  minBackoffMs: 500,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 10_000,
};

/**
 * The wait before reconnect attempt number `attempt` (0 for the first retry):
 * `min(max, min * 2^attempt)`, of which the upper half is random ("equal jitter"), so
 * clients that lost the server together do not come back in lockstep, and no wait is
 * shorter than half the nominal one.
 * @param {number} attempt
 * @param {{minBackoffMs?: number, maxBackoffMs?: number, random?: () => number}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}) {
  const minMs = options.minBackoffMs ?? DEFAULTS.minBackoffMs;
  const maxMs = options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
  const random = options.random ?? Math.random;
  const nominal = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(nominal / 2 + (random() * nominal) / 2);
}

/**
 * `url` with `spaceID` (and `token`, when given) set as query parameters (other
 * parameters are kept).
 * @param {string} url
 * @param {string} spaceID
 * @param {string|null} [token]
 */
export function pokeURL(url, spaceID, token) {
  const u = new URL(url);
  u.searchParams.set('spaceID', spaceID);
  if (typeof token === 'string' && token !== '') u.searchParams.set('token', token);
  return u.toString();
}

/**
 * @typedef {{type: string, [key: string]: unknown}} PokeEvent
 * Events passed to `onEvent`:
 * - `{type:'connecting', attempt, url, withToken}`: `url` never includes the token
 * - `{type:'open', reconnect}`: `reconnect` is false for the first successful open
 * - `{type:'poke'}`
 * - `{type:'message', data}`: any other frame
 * - `{type:'ping'}`: a keep-alive was sent
 * - `{type:'pull', reason}`: `rep.pull()` was called, reason `'poke'|'connect'|'reconnect'`
 * - `{type:'pull-error', error}`: `rep.pull()` rejected (Replicache retries by itself)
 * - `{type:'error', error}`: the socket reported an error (a close follows)
 * - `{type:'close', code, reason, wasOpen}`
 * - `{type:'retry', attempt, delayMs}`: next attempt scheduled
 * - `{type:'closed'}`: `close()` was called
 */

/**
 * Connects a Replicache instance to a poke socket.
 * @param {object} options
 * @param {string} options.url WebSocket URL without `spaceID` (ws:, wss:, or http(s): which is mapped to ws(s):)
 * @param {string} options.spaceID
 * @param {{pull: (opts?: {now?: boolean}) => unknown}} options.rep anything with `pull()`
 * @param {() => (string|null|undefined|Promise<string|null|undefined>)} [options.token]
 *   the bearer token for the next attempt (called before each one; no token: none sent;
 *   throwing or taking longer than `connectTimeoutMs` fails the attempt, which is retried)
 * @param {typeof WebSocket} [options.WebSocketImpl] defaults to the global `WebSocket`
 * @param {number} [options.keepAliveMs]
 * @param {number} [options.minBackoffMs]
 * @param {number} [options.maxBackoffMs]
 * @param {number} [options.connectTimeoutMs]
 * @param {() => number} [options.random] for tests
 * @param {(event: PokeEvent) => void} [options.onEvent]
 * @returns {{close: () => void, reconnectNow: () => void, readonly connected: boolean}}
 */
export function connectPokes({
  url,
  spaceID,
  rep,
  token,
  WebSocketImpl = globalThis.WebSocket,
  keepAliveMs = DEFAULTS.keepAliveMs,
  minBackoffMs = DEFAULTS.minBackoffMs,
  maxBackoffMs = DEFAULTS.maxBackoffMs,
  connectTimeoutMs = DEFAULTS.connectTimeoutMs,
  random = Math.random,
  onEvent = () => {},
}) {
  if (typeof WebSocketImpl !== 'function') {
    throw new TypeError(
      'connectPokes: no WebSocket implementation; pass WebSocketImpl (e.g. from the ws package)',
    );
  }
  if (!url) throw new TypeError('connectPokes: url is required');
  if (!spaceID) throw new TypeError('connectPokes: spaceID is required');
  if (!rep || typeof rep.pull !== 'function') {
    throw new TypeError('connectPokes: rep must have a pull() method');
  }
  if (token !== undefined && typeof token !== 'function') {
    throw new TypeError('connectPokes: token must be a function');
  }
  const target = pokeURL(url.replace(/^http/i, 'ws'), spaceID);

  let closed = false;
  let socket = null;
  let connected = false;
  let everOpened = false;
  let failures = 0; // consecutive attempts that failed; drives the backoff
  let attempts = 0;
  let retryTimer = null;
  let connectTimer = null;
  let keepAliveTimer = null;
  let tokenTimer = null;

  const emit = (event) => {
    try {
      onEvent(event);
    } catch {
      // A listener's bug must not break the socket.
    }
  };

  const pull = (reason) => {
    emit({ type: 'pull', reason });
    try {
      Promise.resolve(rep.pull()).catch((error) => emit({ type: 'pull-error', error }));
    } catch (error) {
      emit({ type: 'pull-error', error });
    }
  };

  const clearTimers = () => {
    clearTimeout(connectTimer);
    clearInterval(keepAliveTimer);
    connectTimer = null;
    keepAliveTimer = null;
  };

  // Resolves to the token for the next attempt.
  const nextToken = () =>
    new Promise((resolve, reject) => {
      tokenTimer = setTimeout(
        () => reject(new Error(`no token after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      Promise.resolve()
        .then(() => token())
        .then(resolve, reject);
    }).finally(() => {
      clearTimeout(tokenTimer);
      tokenTimer = null;
    });

  const connect = () => {
    retryTimer = null;
    if (closed) return;
    attempts += 1;
    if (!token) {
      open(undefined);
      return;
    }
    const attempt = attempts;
    nextToken().then(
      (t) => {
        if (!closed && attempt === attempts) open(t);
      },
      (error) => {
        if (closed || attempt !== attempts) return;
        emit({ type: 'connecting', attempt, url: target, withToken: false });
        emit({ type: 'error', error });
        emit({ type: 'close', code: 1006, reason: 'no token', wasOpen: false });
        scheduleRetry();
      },
    );
  };

  const open = (tok) => {
    const withToken = typeof tok === 'string' && tok !== '';
    emit({ type: 'connecting', attempt: attempts, url: target, withToken });
    let ws;
    try {
      ws = new WebSocketImpl(withToken ? pokeURL(target, spaceID, tok) : target);
    } catch (error) {
      emit({ type: 'error', error });
      scheduleRetry();
      return;
    }
    socket = ws;
    let wasOpen = false;
    let finished = false;

    connectTimer = setTimeout(() => {
      if (!wasOpen && socket === ws) {
        emit({ type: 'error', error: new Error(`no connection after ${connectTimeoutMs} ms`) });
        finish(ws, { code: 1006, reason: 'connect timeout' });
        safeClose(ws);
      }
    }, connectTimeoutMs);

    const finish = (_ws, { code, reason }) => {
      if (finished) return;
      finished = true;
      clearTimers();
      if (socket === ws) {
        socket = null;
        connected = false;
      }
      emit({ type: 'close', code, reason, wasOpen });
      if (wasOpen) failures = 0;
      scheduleRetry();
    };

    ws.addEventListener('open', () => {
      if (finished || closed) {
        safeClose(ws);
        return;
      }
      wasOpen = true;
      connected = true;
      clearTimeout(connectTimer);
      const reconnect = everOpened;
      everOpened = true;
      emit({ type: 'open', reconnect });
      pull(reconnect ? 'reconnect' : 'connect');
      keepAliveTimer = setInterval(() => {
        if (ws.readyState === 1 /* OPEN */) {
          try {
            ws.send(KEEP_ALIVE_MESSAGE);
            emit({ type: 'ping' });
          } catch (error) {
            emit({ type: 'error', error });
          }
        }
      }, keepAliveMs);
    });
    ws.addEventListener('message', (event) => {
      if (finished) return;
      const data = event.data;
      if (data === POKE_MESSAGE) {
        emit({ type: 'poke' });
        pull('poke');
      } else {
        emit({ type: 'message', data });
      }
    });
    ws.addEventListener('error', (event) => {
      if (finished) return;
      emit({ type: 'error', error: event?.error ?? event?.message ?? 'WebSocket error' });
      // Browsers and the ws package follow an error with a close event; some
      // implementations do not, so make sure this attempt ends.
      setTimeout(() => {
        if (!finished) {
          finish(ws, { code: 1006, reason: 'error' });
          safeClose(ws);
        }
      }, 1000);
    });
    ws.addEventListener('close', (event) => {
      finish(ws, { code: event?.code ?? 1006, reason: event?.reason ?? '' });
    });
  };

  const scheduleRetry = () => {
    if (closed || retryTimer) return;
    const delayMs = backoffDelay(failures, { minBackoffMs, maxBackoffMs, random });
    failures += 1;
    emit({ type: 'retry', attempt: failures, delayMs });
    retryTimer = setTimeout(connect, delayMs);
  };

  connect();

  return {
    get connected() {
      return connected;
    },
    /** Skips a pending backoff wait; does nothing while connected or connecting. */
    reconnectNow() {
      if (closed || !retryTimer) return;
      clearTimeout(retryTimer);
      failures = 0;
      connect();
    },
    /** Closes the socket; no reconnect after this. */
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = null;
      clearTimeout(tokenTimer);
      clearTimers();
      const ws = socket;
      socket = null;
      connected = false;
      if (ws) safeClose(ws);
      emit({ type: 'closed' });
    },
  };
}

function safeClose(ws) {
  try {
    ws.close(1000, 'bye');
  } catch {
    // Closing a socket that is still connecting throws in some implementations.
  }
}
