// Real Replicache clients converging through the server.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {closeAllClients, makeClient, pendingCount, pullAndReadCount, readCount, recordingPusher} from './lib/client.mjs';
import {serverCount, serverLMIDs, serverState} from './lib/protocol.mjs';
import {startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

let server;
before(async () => {
  server = await startServer({label: 'convergence'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

/** Pulls until the client reads `expected` and has nothing pending. */
function synced(rep, expected, timeoutMs = 15_000) {
  return waitFor(
    async () => (await pullAndReadCount(rep)) === expected && (await pendingCount(rep)) === 0,
    timeoutMs,
    {message: `client ${rep.clientID} to read count ${expected} with nothing pending`, intervalMs: 50},
  );
}

test('two client groups in one space converge on increments', async () => {
  const space = await server.createSpace();
  const a = makeClient(server, space);
  const b = makeClient(server, space);
  assert.notEqual(await a.clientGroupID, await b.clientGroupID);

  for (let i = 0; i < 3; i++) await a.mutate.increment(1);
  for (let i = 0; i < 2; i++) await b.mutate.increment(1);
  // Optimistic local state before any sync.
  assert.equal(await readCount(a), 3);
  assert.equal(await readCount(b), 2);

  await Promise.all([synced(a, 5), synced(b, 5)]);
  assert.equal(await serverCount(server, space), 5);
  // Each group sees the LMIDs of its own clients only.
  assert.deepEqual(await serverLMIDs(server, space, await a.clientGroupID), {[a.clientID]: 3});
  assert.deepEqual(await serverLMIDs(server, space, await b.clientGroupID), {[b.clientID]: 2});
});

test('clients of one client group push each other\'s mutations, each applied once', async () => {
  const space = await server.createSpace();
  const url = server.pushURL(space);
  // All start offline: pushes send nothing, so the mutations stay pending.
  const pushers = [recordingPusher(url, {offline: true}), recordingPusher(url, {offline: true}), recordingPusher(url, {offline: true})];
  const [a, b, c] = pushers.map(pusher => makeClient(server, space, {group: 'shared', pusher}));
  const groupID = await a.clientGroupID;
  assert.equal(await b.clientGroupID, groupID);
  assert.equal(await c.clientGroupID, groupID);
  assert.equal(new Set([a.clientID, b.clientID, c.clientID]).size, 3);

  // Distinct deltas per client: a mutation applied twice or lost shows in the sum.
  for (let i = 0; i < 3; i++) await a.mutate.increment(1);
  for (let i = 0; i < 2; i++) await b.mutate.increment(10);
  for (let i = 0; i < 4; i++) await c.mutate.increment(100);
  const total = 3 + 20 + 400;

  // b and c pick up the group's pending mutations from the shared store.
  for (const rep of [b, c]) {
    await waitFor(async () => (await pendingCount(rep)) === 9, 15_000,
      {message: `client ${rep.clientID} to hold all 9 pending mutations of its group`, intervalMs: 50});
  }
  // a stays offline for good; b and c come online and push the same mutations at once.
  pushers[1].offline = false;
  pushers[2].offline = false;
  await Promise.all([b.push({now: true}), c.push({now: true})]);

  await waitFor(async () => (await serverCount(server, space)) === total, 15_000,
    {message: `the server count to reach ${total}`, intervalMs: 50});
  assert.deepEqual(await serverLMIDs(server, space, groupID),
    {[a.clientID]: 3, [b.clientID]: 2, [c.clientID]: 4});

  const carriedA = pusher => pusher.requests.some(r => r.sent && r.request.mutations.some(m => m.clientID === a.clientID));
  assert.ok(carriedA(pushers[1]), 'a push from b carried a\'s mutations');
  assert.ok(carriedA(pushers[2]), 'a push from c carried a\'s mutations');
  assert.ok(pushers[0].requests.every(r => !r.sent), 'a itself never sent anything');

  await Promise.all([synced(a, total), synced(b, total), synced(c, total)]);
  assert.equal(await serverCount(server, space), total);
});

test('the server is authoritative: a diverging client mutator is overridden by the server result', async () => {
  const space = await server.createSpace();
  const pusher = recordingPusher(server.pushURL(space), {offline: true});
  const rep = makeClient(server, space, {
    pusher,
    mutators: {
      // Disagrees with the server on purpose: adds twice the delta.
      async increment(tx, delta) {
        const prev = await tx.get('count');
        await tx.set('count', (prev ?? 0) + 2 * delta);
      },
    },
  });
  await rep.mutate.increment(1);
  assert.equal(await readCount(rep), 2, 'the optimistic local result');

  pusher.offline = false;
  await rep.push({now: true});
  await synced(rep, 1);
  assert.equal(await serverCount(server, space), 1);
});

test('spaces are isolated', async () => {
  const s1 = await server.createSpace();
  const s2 = await server.createSpace();
  const c1 = makeClient(server, s1);
  const c2 = makeClient(server, s2);
  for (let i = 0; i < 3; i++) await c1.mutate.increment(1);
  await c2.mutate.increment(10);
  await Promise.all([synced(c1, 3), synced(c2, 10)]);

  // A newcomer to space 2 sees only space 2's data.
  const newcomer = makeClient(server, s2);
  await synced(newcomer, 10);
  assert.deepEqual(await serverState(server, s1), {count: 3});
  assert.deepEqual(await serverState(server, s2), {count: 10});
  // Space 1's client group has no clients in space 2, and the other way round.
  assert.deepEqual(await serverLMIDs(server, s2, await c1.clientGroupID), {});
  assert.deepEqual(await serverLMIDs(server, s1, await c2.clientGroupID), {});
  assert.deepEqual(await serverLMIDs(server, s1, await c1.clientGroupID), {[c1.clientID]: 3});
});
