// Garbage collection seen by real clients: an idle client whose state the server removed
// is told `ClientStateNotFound` and recovers as Replicache does (a new client group from
// the cached state); a client whose cookie is older than the tombstone retention gets a
// reset and ends up with the deletes it could no longer be told of.

import assert from 'node:assert/strict';
import {after, test} from 'node:test';
import {closeAllClients, makeClient, mutators, pendingCount, readCount} from './lib/client.mjs';
import {pullOK, rawPull, serverCount, serverLMIDs, serverState} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const servers = [];
after(async () => {
  await closeAllClients();
  await Promise.all(servers.map(s => s.stop()));
});

async function serverWithGc(label, env) {
  const server = await startServer({label, env: {GC_INTERVAL_SECS: '1', ...env}});
  servers.push(server);
  return server;
}

/** The server's item mutators, for clients that write items. */
const itemMutators = {
  ...mutators,
  async setItem(tx, {key, value}) {
    await tx.set(`item/${key}`, value);
  },
  async deleteItem(tx, {key}) {
    await tx.del(`item/${key}`);
  },
};

test("an idle client's state is removed: its next push gets ClientStateNotFound, and it recovers in a new client group", async () => {
  const server = await serverWithGc('gc-idle', {CLIENT_IDLE_SECS: '2', TOMBSTONE_RETENTION_SECS: '3600'});
  const space = await server.createSpace();
  const name = randomID('idle-');
  const first = makeClient(server, space, {group: name});
  let notFound = 0;
  first.onClientStateNotFound = () => notFound++;
  await first.mutate.increment(1);
  await first.mutate.increment(2);
  await waitFor(async () => {
    await first.pull();
    return (await pendingCount(first)) === 0;
  }, 15_000, {message: 'the increments to be confirmed'});
  const firstGroup = await first.clientGroupID;
  assert.deepEqual(await serverLMIDs(server, space, firstGroup), {[first.clientID]: 2});

  // Nothing pushed for longer than CLIENT_IDLE_SECS: the collector removes the client.
  await waitFor(async () => Object.keys(await serverLMIDs(server, space, firstGroup)).length === 0,
    20_000, {message: 'the idle client to be removed', intervalMs: 200});
  assert.equal(await serverCount(server, space), 3, 'its data stays');

  // It mutates again: mutation 3 is ahead of what the server knows (nothing).
  await first.mutate.increment(10);
  await waitFor(() => notFound > 0, 15_000, {message: 'onClientStateNotFound'});
  assert.equal(await serverCount(server, space), 3, 'the refused mutation was not applied');

  // The app's recovery (a page reload): a new instance of the same name starts a new
  // client group from the cache, and syncs on.
  await first.close();
  const second = makeClient(server, space, {group: name});
  const secondGroup = await second.clientGroupID;
  assert.notEqual(secondGroup, firstGroup);
  await waitFor(async () => {
    await second.pull();
    return (await readCount(second)) === 3;
  }, 15_000, {message: 'the new client group to read the server count'});
  await second.mutate.increment(4);
  await waitFor(async () => (await serverCount(server, space)) === 7, 15_000,
    {message: 'the new client group to push'});
  assert.deepEqual(await serverLMIDs(server, space, secondGroup), {[second.clientID]: 1});
});

test('a cookie older than the tombstone retention gets a reset; younger deletes still arrive as del', async () => {
  const server = await serverWithGc('gc-cookie', {TOMBSTONE_RETENTION_SECS: '3', CLIENT_IDLE_SECS: '3600'});
  const space = await server.createSpace();
  const writer = makeClient(server, space, {mutators: itemMutators});
  for (const key of ['a', 'b', 'c']) await writer.mutate.setItem({key, value: key.toUpperCase()});
  await waitFor(async () => {
    await writer.pull();
    return (await pendingCount(writer)) === 0;
  }, 15_000, {message: 'the items to be confirmed'});

  // A reader syncs once, then stays away (no pull interval, no pokes in Node).
  const reader = makeClient(server, space, {mutators: itemMutators});
  await reader.pull();
  await waitFor(async () => (await reader.query(tx => tx.get('item/a'))) === 'A', 15_000,
    {message: 'the reader to see item/a'});
  const oldCookie = (await pullOK(server, space, {cookie: null})).cookie;

  await writer.mutate.deleteItem({key: 'a'});
  await waitFor(async () => !('item/a' in await serverState(server, space)), 15_000,
    {message: 'the delete to reach the server'});
  // Younger than the retention: the old cookie learns the delete incrementally.
  const young = await pullOK(server, space, {cookie: oldCookie});
  assert.deepEqual(young.patch, [{op: 'del', key: 'item/a'}]);

  // Older than the retention: the collector removes the tombstone, and the old cookie
  // gets a reset (clear, then every live entry).
  let answer;
  await waitFor(async () => {
    answer = (await rawPull(server, space, {cookie: oldCookie})).json;
    return answer?.patch?.[0]?.op === 'clear';
  }, 20_000, {message: 'a reset for the old cookie', intervalMs: 250});
  const keys = answer.patch.filter(op => op.op === 'put').map(op => op.key).sort();
  assert.deepEqual(keys, ['item/b', 'item/c']);
  assert.ok(answer.cookie.order > oldCookie.order);

  // The real client, back after all that time, ends up without the deleted item.
  await reader.pull();
  await waitFor(async () => (await reader.query(tx => tx.get('item/a'))) === undefined, 15_000,
    {message: 'the reader to drop item/a'});
  assert.equal(await reader.query(tx => tx.get('item/b')), 'B');
  assert.equal(await reader.query(tx => tx.get('item/c')), 'C');
});
