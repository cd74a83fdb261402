// Mutations the server refuses are dropped on the client and leave no trace on the server.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {closeAllClients, makeClient, mutators, pendingCount, readCount, recordingPusher} from './lib/client.mjs';
import {rawPush, serverLMIDs, serverState} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

let server;
before(async () => {
  server = await startServer({label: 'failures'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

test('failing mutations are dropped on the client and leave no trace on the server', async () => {
  const space = await server.createSpace();
  const pusher = recordingPusher(server.pushURL(space), {offline: true});
  const rep = makeClient(server, space, {
    pusher,
    mutators: {
      ...mutators,
      // Known only to the client.
      async clientOnly(tx) {
        await tx.set('count', 1000);
        await tx.set('item/ghost', 'boo');
      },
    },
  });
  await rep.mutate.increment(1); // 1: ok
  await rep.mutate.increment('two'); // 2: bad args on the server
  await rep.mutate.clientOnly(); // 3: unknown to the server
  await rep.mutate.increment(2); // 4: ok
  await rep.mutate.clientOnly(); // 5: unknown to the server, and last
  assert.equal(await pendingCount(rep), 5);
  assert.equal(await readCount(rep), 1000, 'the optimistic local result (clientOnly ran last)');
  assert.equal(await rep.query(tx => tx.get('item/ghost')), 'boo');

  pusher.offline = false;
  await rep.push({now: true});
  await waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0;
  }, 15_000, {message: 'every mutation to be confirmed', intervalMs: 50});

  assert.equal(await readCount(rep), 3);
  assert.equal(await rep.query(tx => tx.has('item/ghost')), false);
  // All five went out in one request.
  const sent = pusher.requests.filter(r => r.sent).map(r => r.request.mutations.map(m => m.name));
  assert.deepEqual(sent[0], ['increment', 'increment', 'clientOnly', 'increment', 'clientOnly']);
  // The server: only the good mutations' effects, and the LMID past the failed ones.
  assert.deepEqual(await serverState(server, space), {count: 3});
  assert.deepEqual(await serverLMIDs(server, space, await rep.clientGroupID), {[rep.clientID]: 5});
});

test('refused setItem/deleteItem/increment calls (raw push) advance the LMID and write nothing', async () => {
  const space = await server.createSpace();
  const clientGroupID = randomID('g');
  const clientID = randomID('c');
  const mutations = [
    {name: 'setItem', args: {key: 'a', value: 1}},
    {name: 'setItem', args: {key: '', value: 2}}, // empty key
    {name: 'setItem', args: {key: 'b'}}, // no value
    {name: 'deleteItem', args: {}}, // no key
    {name: 'increment', args: null},
    {name: 'increment', args: '5'},
    {name: 'noSuchMutator', args: {key: 'a', value: 3}},
    {name: 'increment', args: 4},
  ].map((m, i) => ({clientID, id: i + 1, ...m}));
  const res = await rawPush(server, space, {clientGroupID, mutations});
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, {});
  assert.deepEqual(await serverState(server, space), {'item/a': 1, count: 4});
  assert.deepEqual(await serverLMIDs(server, space, clientGroupID), {[clientID]: 8});
});
