// A client that was offline for long pushes a large backlog at once.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {closeAllClients, makeClient, mutators, pendingCount, readCount, recordingPusher} from './lib/client.mjs';
import {serverLMIDs, serverState} from './lib/protocol.mjs';
import {startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

let server;
before(async () => {
  server = await startServer({label: 'offline'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

test('a large offline backlog (500 mutations over 300 keys: more than one DynamoDB transaction holds) syncs exactly', async () => {
  const space = await server.createSpace();
  const pusher = recordingPusher(server.pushURL(space), {offline: true});
  const rep = makeClient(server, space, {
    pusher,
    mutators: {
      ...mutators,
      async setItem(tx, {key, value}) {
        await tx.set(`item/${key}`, value);
      },
    },
  });
  const ITEMS = 300;
  const INCREMENTS = 200;
  for (let i = 0; i < ITEMS; i++) {
    await rep.mutate.setItem({key: `k${i}`, value: {i, label: `item ${i}`}});
    if (i < INCREMENTS) await rep.mutate.increment(1);
  }
  const total = ITEMS + INCREMENTS;
  assert.equal(await pendingCount(rep), total);

  pusher.offline = false;
  await rep.push({now: true});
  await waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0;
  }, 60_000, {message: 'the backlog to be confirmed', intervalMs: 100});

  const state = await serverState(server, space);
  assert.equal(state.count, INCREMENTS);
  assert.equal(Object.keys(state).length, ITEMS + 1);
  for (let i = 0; i < ITEMS; i++) assert.deepEqual(state[`item/k${i}`], {i, label: `item ${i}`});
  assert.deepEqual(await serverLMIDs(server, space, await rep.clientGroupID), {[rep.clientID]: total});
  assert.equal(await readCount(rep), INCREMENTS);
  // The whole backlog went out in one request.
  assert.equal(pusher.requests.find(r => r.sent).request.mutations.length, total);
});
