// The poke helper against the real local server (no browser): pokes after pushes,
// keep-alive frames accepted, unknown spaces refused before the upgrade.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { connectPokes } from '../src/poke.js';
import { api, devToken, sleep, startServer, waitFor } from './harness.mjs';

let server;
before(async () => {
  server = await startServer({ logName: 'server-poke' });
});
after(() => server?.stop());

function push(spaceID, clientID, id, origin = server.origin, token = undefined) {
  return api(
    origin,
    'push',
    {
      pushVersion: 1,
      clientGroupID: `g-${clientID}`,
      profileID: 'p',
      schemaVersion: '',
      mutations: [{ clientID, id, name: 'increment', args: 1, timestamp: 1 }],
    },
    `?spaceID=${spaceID}`,
    token,
  );
}

/** The status of a WebSocket upgrade request to `url` (101 when it is accepted). */
function upgradeStatus(url) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

test('pokes arrive after pushes, and keep-alive pings do not disturb the socket', async (t) => {
  const { json } = await api(server.origin, 'createSpace', {});
  const spaceID = json.spaceID;
  const pulls = [];
  const events = [];
  const pokes = connectPokes({
    url: `ws://127.0.0.1:${server.port}/api/replicache/poke`,
    spaceID,
    rep: { pull: () => void pulls.push(Date.now()) },
    WebSocketImpl: WebSocket,
    keepAliveMs: 40,
    onEvent: (e) => events.push(e),
  });
  t.after(() => pokes.close());
  await waitFor(() => pulls.length === 1, 'pull on connect');

  for (let i = 1; i <= 3; i++) {
    const pushedAt = Date.now();
    const res = await push(spaceID, 'c1', i);
    assert.equal(res.status, 200, res.text);
    await waitFor(() => pulls.length === 1 + i, `pull after push ${i}`);
    assert.ok(pulls.at(-1) - pushedAt < 1000);
    await sleep(100); // a few keep-alives in between
  }
  const pingsSent = () => events.filter((e) => e.type === 'ping').length;
  await waitFor(() => pingsSent() >= 5, () => `5 keep-alive pings (${pingsSent()} sent)`);
  assert.equal(events.filter((e) => e.type === 'close').length, 0, 'the server kept the socket');
  assert.equal(events.filter((e) => e.type === 'poke').length, 3);
  // A duplicate push commits nothing: no poke expected, and none needed.
  await push(spaceID, 'c1', 3);
  await sleep(200);
  assert.equal(events.filter((e) => e.type === 'poke').length, 3);
});

test('an unknown space is refused before the upgrade', async () => {
  const status = await upgradeStatus(`${server.origin}/api/replicache/poke?spaceID=noSuchSpace123`);
  assert.ok(status >= 400 && status < 500, `status ${status}`);

  const events = [];
  const pokes = connectPokes({
    url: `ws://127.0.0.1:${server.port}/api/replicache/poke`,
    spaceID: 'noSuchSpace123',
    rep: { pull() {} },
    WebSocketImpl: WebSocket,
    minBackoffMs: 50,
    onEvent: (e) => events.push(e),
  });
  const errors = () => events.filter((e) => e.type === 'error').map((e) => String(e.error?.message ?? e.error));
  // Two attempts refused with a 4xx (the first one and a retry), rather than whatever
  // happened to be done after a fixed time.
  try {
    await waitFor(
      () => errors().filter((m) => /404|4\d\d/.test(m)).length >= 2,
      () => `two attempts refused with a 4xx; errors so far: ${JSON.stringify(errors())}`,
    );
  } finally {
    pokes.close();
  }
  assert.equal(events.filter((e) => e.type === 'open').length, 0, 'no attempt opened');
});

test('AUTH_MODE=jwt: the socket needs ?token= (401 without, 404 for a stranger); the helper sends it', async (t) => {
  const jwt = await startServer({ env: { AUTH_MODE: 'jwt' }, logName: 'server-poke-jwt' });
  t.after(() => jwt.stop());
  const owner = await devToken(jwt.origin, 'olivia');
  const { json } = await api(jwt.origin, 'createSpace', {}, '', owner.token);
  const spaceID = json.spaceID;
  const poke = `${jwt.origin}/api/replicache/poke?spaceID=${spaceID}`;
  const stranger = await devToken(jwt.origin, 'sam');
  assert.equal(await upgradeStatus(poke), 401, 'no token');
  assert.equal(await upgradeStatus(`${poke}&token=not.a.jwt`), 401, 'a bad token');
  assert.equal(await upgradeStatus(`${poke}&token=${stranger.token}`), 404, 'a stranger: as if unknown');
  assert.equal(await upgradeStatus(`${poke}&token=${owner.token}`), 101, 'the owner');

  const pulls = [];
  const asked = [];
  const pokes = connectPokes({
    url: `ws://127.0.0.1:${jwt.port}/api/replicache/poke`,
    spaceID,
    rep: { pull: () => void pulls.push(Date.now()) },
    WebSocketImpl: WebSocket,
    minBackoffMs: 20,
    maxBackoffMs: 40,
    token: async () => {
      const { token } = await devToken(jwt.origin, 'olivia');
      asked.push(token);
      return token;
    },
  });
  t.after(() => pokes.close());
  await waitFor(() => pulls.length === 1, 'pull on connect');
  const res = await push(spaceID, 'c1', 1, jwt.origin, owner.token);
  assert.equal(res.status, 200, res.text);
  await waitFor(() => pulls.length === 2, 'pull after the push');
  assert.equal(asked.length, 1);
});
