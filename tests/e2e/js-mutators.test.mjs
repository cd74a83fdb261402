// The app's mutators written once, in client/src/mutators.js: real Replicache clients run
// that module, and the server runs the same file with authority. `sumItems` and
// `clearItems` exist only in JavaScript, so their effect on the server proves it ran the
// JavaScript; `?wrongIncrement` (the client adds twice) still loses to the server.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {makeMutators} from '../../client/src/mutators.js';
import {closeAllClients, makeClient, pendingCount} from './lib/client.mjs';
import {rawPush, serverLMIDs, serverState} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

let server;
before(async () => {
  server = await startServer({label: 'js-mutators'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

/** Pulls until `rep` has nothing pending and `read` (a query) gives `expected`. */
function settled(rep, read, expected) {
  return waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0 && JSON.stringify(await rep.query(read)) === JSON.stringify(expected);
  }, 15_000, {message: `client ${rep.clientID} to read ${JSON.stringify(expected)}`, intervalMs: 50});
}

const count = tx => tx.get('count');

test('two clients with the app\'s mutators converge; the wrong client is corrected by the server', async () => {
  const space = await server.createSpace();
  const right = makeClient(server, space, {mutators: makeMutators()});
  const wrong = makeClient(server, space, {mutators: makeMutators({wrongIncrement: true})});

  await right.mutate.increment(1);
  await wrong.mutate.increment(2);
  // The wrong client shows its own doubled delta at once.
  assert.equal(await wrong.query(count), 4);

  await Promise.all([settled(right, count, 3), settled(wrong, count, 3)]);
  assert.equal((await serverState(server, space)).count, 3);
});

test('mutators defined only in JavaScript run on the server: sumItems, clearItems', async () => {
  const space = await server.createSpace();
  const writer = makeClient(server, space, {mutators: makeMutators()});
  const reader = makeClient(server, space, {mutators: makeMutators()});

  await writer.mutate.setItem({key: 'a', value: 0.1});
  await writer.mutate.setItem({key: 'b', value: 0.2});
  await writer.mutate.setItem({key: '😀', value: 'not a number'});
  await writer.mutate.sumItems();
  const sum = tx => tx.get('sum');
  await settled(writer, sum, 0.1 + 0.2);
  // The other client never ran sumItems: it reads the server's result.
  await settled(reader, sum, 0.30000000000000004);
  assert.equal((await serverState(server, space)).sum, 0.30000000000000004);

  await reader.mutate.clearItems();
  const items = tx => tx.scan({prefix: 'item/'}).keys().toArray();
  await Promise.all([settled(reader, items, []), settled(writer, items, [])]);
  const state = await serverState(server, space);
  assert.deepEqual(Object.keys(state).sort(), ['sum']);
});

test('a JavaScript mutator that throws on the server is processed with no effect', async () => {
  const space = await server.createSpace();
  const clientGroupID = randomID('g');
  const res = await rawPush(server, space, {
    clientGroupID,
    mutations: [
      {clientID: 'c', id: 1, name: 'increment', args: 5},
      {clientID: 'c', id: 2, name: 'increment', args: 'five'}, // throws: not a number
      {clientID: 'c', id: 3, name: 'setItem', args: {key: 'x', value: 'text'}},
      {clientID: 'c', id: 4, name: 'sumItems', args: null},
      {clientID: 'c', id: 5, name: 'increment', args: 1e308},
      {clientID: 'c', id: 6, name: 'increment', args: 1e308}, // throws: would overflow
    ],
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(await serverLMIDs(server, space, clientGroupID), {c: 6});
  assert.deepEqual(await serverState(server, space), {count: 1e308, 'item/x': 'text', sum: 0});
});
