// The poke WebSocket: clients learn of other clients' pushes without polling.
// Needs a WebSocket client: Node 22+, or Node 20 with --experimental-websocket.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {closeAllClients, makeClient, pendingCount, readCount} from './lib/client.mjs';
import {rawPush, serverCount} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const skip = typeof WebSocket === 'undefined' && !process.env.E2E_REQUIRE_WEBSOCKET &&
  'no WebSocket client: run node with --experimental-websocket';

let server;
const sockets = new Set();
before(async () => {
  server = await startServer({label: 'pokes'});
});
after(async () => {
  for (const ws of sockets) ws.close();
  await closeAllClients();
  await server?.stop();
});

/** Opens the poke socket of a space; resolves once open. `onPoke` runs for every poke. */
function openPokeSocket(spaceID, onPoke = () => {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.pokeURL(spaceID));
    sockets.add(ws);
    ws.pokes = 0;
    ws.addEventListener('message', event => {
      if (event.data === 'poke') {
        ws.pokes++;
        onPoke();
      }
    });
    ws.addEventListener('open', () => resolve(ws), {once: true});
    ws.addEventListener('error', () => reject(new Error(`poke socket of ${spaceID} failed to open`)), {once: true});
  });
}

test('a poke makes another client pull: it converges without polling', {skip}, async () => {
  const space = await server.createSpace();
  const writer = makeClient(server, space);
  const reader = makeClient(server, space);
  // As an app does: every client pulls when poked.
  await openPokeSocket(space, () => reader.pull());
  await openPokeSocket(space, () => writer.pull());

  for (let i = 0; i < 3; i++) await writer.mutate.increment(1);
  // The test never calls pull(): only pokes make the clients pull.
  await waitFor(async () => (await readCount(reader)) === 3, 10_000, {message: 'the reader to see 3 through pokes'});
  await waitFor(async () => (await readCount(writer)) === 3 && (await pendingCount(writer)) === 0, 10_000,
    {message: 'the writer to be confirmed through its own poke'});
});

test('a poke comes after the commit, and only to sockets of that space', {skip}, async () => {
  const s1 = await server.createSpace();
  const s2 = await server.createSpace();
  const seenAtPoke = [];
  const ws1 = await openPokeSocket(s1, () => seenAtPoke.push(serverCount(server, s1)));
  const ws2 = await openPokeSocket(s2);

  const g = randomID('g');
  const c = randomID('c');
  const res = await rawPush(server, s1, {clientGroupID: g, mutations: [{clientID: c, id: 1, name: 'increment', args: 5}]});
  assert.equal(res.status, 200, res.text);
  await waitFor(() => ws1.pokes >= 1, 5_000, {message: 'a poke on space 1'});
  // What a pull saw right when the poke arrived: the push's effect.
  assert.equal(await seenAtPoke[0], 5);

  const res2 = await rawPush(server, s2, {clientGroupID: g, mutations: [{clientID: c, id: 1, name: 'increment', args: 1}]});
  assert.equal(res2.status, 200, res2.text);
  await waitFor(() => ws2.pokes >= 1, 5_000, {message: 'a poke on space 2'});
  assert.equal(ws2.pokes, 1, 'space 2 got no poke for space 1');
  assert.equal(ws1.pokes, 1, 'space 1 got no poke for space 2');
});

test('a poke socket for an unknown space is refused', {skip}, async () => {
  await assert.rejects(openPokeSocket(randomID('nosuchspace')));
});
