// Unit tests of the poke helper against a small `ws` server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import {
  backoffDelay,
  connectPokes,
  KEEP_ALIVE_MESSAGE,
  pokeURL,
} from '../src/poke.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until it holds; fails after a generous `timeoutMs` naming `what`. */
async function waitFor(predicate, { timeoutMs = 15_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** A poke server: records connections (with their URL) and the messages it receives. */
async function startServer(port = 0) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await once(wss, 'listening');
  const server = {
    wss,
    port: wss.address().port,
    url: `ws://127.0.0.1:${wss.address().port}/api/replicache/poke`,
    connections: [],
    received: [],
    get open() {
      return this.connections.filter((c) => c.ws.readyState === WebSocket.OPEN);
    },
    pokeAll() {
      for (const c of this.open) c.ws.send('poke');
    },
    async close() {
      for (const c of this.connections) c.ws.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
  wss.on('connection', (ws, req) => {
    const conn = { ws, url: req.url, at: Date.now() };
    server.connections.push(conn);
    ws.on('message', (data, isBinary) =>
      server.received.push({ conn, data: isBinary ? data : data.toString(), at: Date.now() }),
    );
  });
  return server;
}

function fakeRep() {
  const rep = {
    pulls: 0,
    pull() {
      rep.pulls += 1;
      return Promise.resolve();
    },
  };
  return rep;
}

function recorder() {
  const events = [];
  const onEvent = (e) => events.push({ ...e, at: Date.now() });
  const of = (type) => events.filter((e) => e.type === type);
  return { events, onEvent, of };
}

test('pokeURL adds spaceID and keeps other parameters', () => {
  assert.equal(pokeURL('ws://h:1/p', 'abc'), 'ws://h:1/p?spaceID=abc');
  assert.equal(
    pokeURL('wss://x.execute-api.eu-west-1.amazonaws.com/live?x=1', 'a-b_c'),
    'wss://x.execute-api.eu-west-1.amazonaws.com/live?x=1&spaceID=a-b_c',
  );
  assert.equal(pokeURL('ws://h/p?spaceID=old', 'new'), 'ws://h/p?spaceID=new');
  assert.equal(pokeURL('ws://h/p', 'abc', 'a.b-c_d'), 'ws://h/p?spaceID=abc&token=a.b-c_d');
  assert.equal(pokeURL('ws://h/p', 'abc', null), 'ws://h/p?spaceID=abc');
  assert.equal(pokeURL('ws://h/p', 'abc', ''), 'ws://h/p?spaceID=abc');
});

test('token: asked before every attempt, sent as ?token=, never in events', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  let issued = 0;
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's1',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 10,
    maxBackoffMs: 20,
    // Async, as a token renewal is.
    token: async () => {
      issued += 1;
      await sleep(5);
      return `tok${issued}`;
    },
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => rep.pulls === 1, { what: 'connect' });
  assert.equal(server.connections[0].url, '/api/replicache/poke?spaceID=s1&token=tok1');
  server.open[0].ws.terminate();
  await waitFor(() => server.open.length === 1 && rep.pulls === 2, { what: 'reconnect' });
  assert.equal(server.connections[1].url, '/api/replicache/poke?spaceID=s1&token=tok2', 'a fresh token');
  const connecting = rec.of('connecting');
  assert.deepEqual(connecting.map((e) => e.withToken), [true, true]);
  for (const e of connecting) assert.doesNotMatch(e.url, /token/);
});

test('token: none means no parameter; a failing or hanging token function is retried', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  let calls = 0;
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's2',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 10,
    maxBackoffMs: 20,
    connectTimeoutMs: 100,
    token: () => {
      calls += 1;
      if (calls === 1) throw new Error('signed out for now');
      if (calls === 2) return Promise.reject(new Error('renewal failed'));
      if (calls === 3) return new Promise(() => {}); // never answers
      return null;
    },
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => rep.pulls === 1, { what: 'the fourth attempt to connect' });
  assert.equal(calls, 4);
  assert.equal(server.connections.length, 1, 'no socket without a token answer');
  assert.equal(server.connections[0].url, '/api/replicache/poke?spaceID=s2');
  assert.deepEqual(
    rec.of('error').map((e) => e.error.message),
    ['signed out for now', 'renewal failed', 'no token after 100 ms'],
  );
  assert.equal(rec.of('retry').length, 3);
});

test('token: close() while a token is awaited opens nothing', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  let answer;
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's3',
    rep: fakeRep(),
    WebSocketImpl: WebSocket,
    token: () => new Promise((r) => (answer = r)),
  });
  await waitFor(() => typeof answer === 'function', { what: 'the token to be asked for' });
  pokes.close();
  answer('late');
  await sleep(100);
  assert.equal(server.connections.length, 0);
});

test('backoffDelay doubles, is capped, and jitters within the upper half', () => {
  const opts = { minBackoffMs: 100, maxBackoffMs: 1000 };
  const low = (a) => backoffDelay(a, { ...opts, random: () => 0 });
  const high = (a) => backoffDelay(a, { ...opts, random: () => 1 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map(high), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map(low), [50, 100, 200, 400, 500, 500, 500]);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(3, opts);
    assert.ok(d >= 400 && d <= 800, `${d}`);
  }
  // Defaults: capped at 30 s.
  assert.equal(backoffDelay(100, { random: () => 1 }), 30_000);
});

test('connects with ?spaceID=, pulls on connect and on every poke', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 'space-1',
    rep,
    WebSocketImpl: WebSocket,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());

  await waitFor(() => rep.pulls === 1, { what: 'pull on connect' });
  assert.equal(server.connections.length, 1);
  assert.equal(server.connections[0].url, '/api/replicache/poke?spaceID=space-1');
  assert.equal(pokes.connected, true);
  assert.deepEqual(
    rec.of('pull').map((e) => e.reason),
    ['connect'],
  );

  server.pokeAll();
  await waitFor(() => rep.pulls === 2, { what: 'pull on first poke' });
  server.pokeAll();
  server.pokeAll();
  await waitFor(() => rep.pulls === 4, { what: 'pull on two more pokes' });
  assert.equal(rec.of('poke').length, 3);

  // Anything else is reported, not pulled on.
  server.open[0].ws.send('hello');
  await waitFor(() => rec.of('message').length === 1, { what: 'other message' });
  assert.equal(rec.of('message')[0].data, 'hello');
  assert.equal(rep.pulls, 4);
});

test('reconnects after the server drops the socket, and pulls on reconnect', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 20,
    maxBackoffMs: 200,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => rep.pulls === 1, { what: 'first connect' });

  for (let round = 1; round <= 3; round++) {
    server.open[0].ws.terminate(); // abrupt: no close frame
    await waitFor(() => server.open.length === 1 && rep.pulls === round + 1, {
      what: `reconnect ${round}`,
    });
    // A socket that was open resets the backoff: every retry here is the short one.
    const retry = rec.of('retry').at(-1);
    assert.ok(retry.delayMs <= 20, `retry after a healthy connection waits ${retry.delayMs}`);
  }
  assert.equal(server.connections.length, 4);
  assert.deepEqual(
    rec.of('pull').map((e) => e.reason),
    ['connect', 'reconnect', 'reconnect', 'reconnect'],
  );
  assert.deepEqual(
    rec.of('open').map((e) => e.reconnect),
    [false, true, true, true],
  );
  // A clean close from the server (e.g. API Gateway's 2-hour limit) reconnects too.
  server.open[0].ws.close(1001, 'going away');
  await waitFor(() => server.open.length === 1 && rep.pulls === 5, { what: 'reconnect after 1001' });
});

test('backs off while the server is down, then reconnects and pulls when it is back', async (t) => {
  let server = await startServer();
  const port = server.port;
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 20,
    maxBackoffMs: 160,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => rep.pulls === 1, { what: 'first connect' });

  await server.close();
  // Several failed attempts: the nominal wait doubles up to the cap.
  await waitFor(() => rec.of('retry').length >= 6, { what: 'retries' });
  assert.equal(pokes.connected, false);
  const delays = rec.of('retry').map((e) => e.delayMs);
  // retry 1 follows the healthy connection (attempt 0), then attempts 1, 2, 3, ...
  const nominal = (i) => Math.min(160, 20 * 2 ** i);
  delays.forEach((d, i) => {
    assert.ok(d >= nominal(i) / 2 && d <= nominal(i), `retry ${i}: ${d} ms not in [${nominal(i) / 2}, ${nominal(i)}]`);
  });
  assert.ok(delays.slice(4).every((d) => d <= 160), `capped: ${delays}`);

  server = await startServer(port);
  t.after(() => server.close());
  await waitFor(() => server.open.length === 1 && rep.pulls === 2, {
    what: 'reconnect once the server is back',
  });
  assert.equal(rec.of('pull').at(-1).reason, 'reconnect');
  // Pokes flow again on the new socket.
  server.pokeAll();
  await waitFor(() => rep.pulls === 3, { what: 'poke after reconnect' });
});

test('a refused upgrade (unknown space) is retried with backoff, not in a tight loop', async (t) => {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, cb) => cb(false, 404, 'unknown space'),
  });
  await once(wss, 'listening');
  t.after(() => new Promise((r) => wss.close(r)));
  const rep = fakeRep();
  const rec = recorder();
  const startedAt = Date.now();
  const pokes = connectPokes({
    url: `ws://127.0.0.1:${wss.address().port}/api/replicache/poke`,
    spaceID: 'nope',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 20,
    maxBackoffMs: 80,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  // It keeps retrying: wait for three refused attempts (however long a busy machine takes)...
  await waitFor(() => rec.of('connecting').length >= 3 && rec.of('error').length >= 2, {
    what: 'three attempts, the first two refused',
  });
  // ...and not in a tight loop: 10 + 20 + 40 + 40 + ... ms (lower bounds of the waits)
  // leave room for at most ~12 attempts in the first 400 ms, however fast the refusals.
  const windowEnd = startedAt + 400;
  if (Date.now() < windowEnd) await sleep(windowEnd - Date.now());
  const attempts = rec.of('connecting').filter((e) => e.at <= windowEnd).length;
  assert.ok(attempts <= 12, `${attempts} attempts in the first 400 ms`);
  assert.equal(rep.pulls, 0);
});

test('an attempt that never opens times out and is retried', async (t) => {
  // Accepts TCP connections but never answers the upgrade.
  const sockets = [];
  const tcp = net.createServer((s) => sockets.push(s));
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => tcp.close(r));
  });
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: `ws://127.0.0.1:${tcp.address().port}/`,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    connectTimeoutMs: 100,
    minBackoffMs: 10,
    maxBackoffMs: 20,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => sockets.length >= 3, { what: 'three attempts' });
  assert.ok(rec.of('error').some((e) => /no connection after 100 ms/.test(String(e.error.message))));
  assert.equal(rep.pulls, 0);
});

test('keep-alive pings are sent at the configured interval, and stop on close', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    keepAliveMs: 60,
    onEvent: rec.onEvent,
  });
  await waitFor(() => server.open.length === 1, { what: 'connect' });
  const openedAt = Date.now();
  await waitFor(() => server.received.length >= 4, { what: 'four pings' });
  const elapsed = Date.now() - openedAt;
  assert.ok(elapsed >= 4 * 60 - 20, `four pings after ${elapsed} ms: too early`);
  for (const m of server.received) assert.equal(m.data, KEEP_ALIVE_MESSAGE);
  assert.deepEqual(JSON.parse(KEEP_ALIVE_MESSAGE), { action: 'ping' });
  const gaps = server.received.slice(1).map((m, i) => m.at - server.received[i].at);
  for (const g of gaps) assert.ok(g >= 40 && g <= 200, `gap ${g} ms`);
  assert.ok(rec.of('ping').length >= 4);

  pokes.close();
  await waitFor(() => server.open.length === 0, { what: 'socket closed' });
  const count = server.received.length;
  await sleep(200);
  assert.equal(server.received.length, count, 'no ping after close()');
});

test('the default keep-alive is well inside API Gateway idle timeout', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const realSetInterval = globalThis.setInterval;
  const intervals = [];
  globalThis.setInterval = (fn, ms, ...rest) => {
    intervals.push(ms);
    return realSetInterval(fn, ms, ...rest);
  };
  t.after(() => {
    globalThis.setInterval = realSetInterval;
  });
  const pokes = connectPokes({ url: server.url, spaceID: 's', rep: fakeRep(), WebSocketImpl: WebSocket });
  t.after(() => pokes.close());
  await waitFor(() => intervals.length === 1, { what: 'keep-alive timer' });
  assert.equal(intervals[0], 5 * 60_000);
  assert.ok(intervals[0] < 10 * 60_000);
});

test('close() stops reconnecting', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 10,
    maxBackoffMs: 20,
    onEvent: rec.onEvent,
  });
  await waitFor(() => rep.pulls === 1, { what: 'connect' });
  pokes.close();
  pokes.close(); // idempotent
  await waitFor(() => server.open.length === 0, { what: 'server sees the close' });
  await sleep(150);
  assert.equal(server.connections.length, 1, 'no reconnect after close()');
  assert.equal(rec.of('closed').length, 1);
  assert.equal(pokes.connected, false);
});

test('reconnectNow() skips the backoff wait', async (t) => {
  let server = await startServer();
  const port = server.port;
  const rep = fakeRep();
  const rec = recorder();
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    minBackoffMs: 60_000,
    maxBackoffMs: 60_000,
    onEvent: rec.onEvent,
  });
  t.after(() => pokes.close());
  await waitFor(() => rep.pulls === 1, { what: 'connect' });
  await server.close();
  // reconnectNow() does nothing while the socket is (thought to be) open: wait until the
  // client has seen the close and scheduled its retry, now 30-60 s away.
  await waitFor(() => rec.of('retry').length >= 1, { what: 'the retry to be scheduled' });
  assert.ok(rec.of('retry')[0].delayMs >= 30_000, `retry in ${rec.of('retry')[0].delayMs} ms`);
  server = await startServer(port);
  t.after(() => server.close());
  pokes.reconnectNow();
  await waitFor(() => server.open.length === 1 && rep.pulls === 2, { what: 'immediate reconnect' });
});

test('a failing pull() or a throwing listener does not break the socket', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  let pulls = 0;
  const rep = {
    pull() {
      pulls += 1;
      if (pulls % 2) throw new Error('sync throw');
      return Promise.reject(new Error('async reject'));
    },
  };
  const errors = [];
  const pokes = connectPokes({
    url: server.url,
    spaceID: 's',
    rep,
    WebSocketImpl: WebSocket,
    onEvent: (e) => {
      if (e.type === 'pull-error') errors.push(e.error.message);
      throw new Error('listener bug');
    },
  });
  t.after(() => pokes.close());
  await waitFor(() => pulls === 1, { what: 'connect' });
  server.pokeAll();
  server.pokeAll();
  await waitFor(() => pulls === 3 && errors.length === 3, { what: 'pulls despite errors' });
  assert.deepEqual(errors.sort(), ['async reject', 'sync throw', 'sync throw']);
  assert.equal(pokes.connected, true);
});

test('argument checks', () => {
  const rep = fakeRep();
  assert.throws(() => connectPokes({ url: 'ws://x', spaceID: 's', rep, WebSocketImpl: null }), /WebSocket/);
  assert.throws(() => connectPokes({ url: '', spaceID: 's', rep, WebSocketImpl: WebSocket }), /url/);
  assert.throws(() => connectPokes({ url: 'ws://x', spaceID: '', rep, WebSocketImpl: WebSocket }), /spaceID/);
  assert.throws(() => connectPokes({ url: 'ws://x', spaceID: 's', rep: {}, WebSocketImpl: WebSocket }), /pull/);
  assert.throws(
    () => connectPokes({ url: 'ws://x', spaceID: 's', rep, WebSocketImpl: WebSocket, token: 'jwt' }),
    /token/,
  );
});
