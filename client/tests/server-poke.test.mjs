// The poke helper against the real local server (no browser): pokes after pushes,
// keep-alive frames accepted, unknown spaces refused before the upgrade.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { connectPokes } from '../src/poke.js';
import { api, sleep, startServer, waitFor } from './harness.mjs';

let server;
before(async () => {
  server = await startServer({ logName: 'server-poke' });
});
after(() => server?.stop());

function push(spaceID, clientID, id) {
  return api(
    server.origin,
    'push',
    {
      pushVersion: 1,
      clientGroupID: `g-${clientID}`,
      profileID: 'p',
      schemaVersion: '',
      mutations: [{ clientID, id, name: 'increment', args: 1, timestamp: 1 }],
    },
    `?spaceID=${spaceID}`,
  );
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
  const status = await new Promise((resolve, reject) => {
    const req = http.request(`${server.origin}/api/replicache/poke?spaceID=noSuchSpace123`, {
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
