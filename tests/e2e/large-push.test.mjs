// A client that made more mutations offline than one push body may hold: with Replicache's
// default pusher its single push is refused (413) for ever; with the client's splitting
// pusher the backlog goes out in several requests and syncs completely.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {makeSplittingPusher, SERVER_MAX_BYTES} from '../../client/src/pusher.js';
import {closeAllClients, makeClient, mutators, pendingCount, readCount} from './lib/client.mjs';
import {serverLMIDs, serverState} from './lib/protocol.mjs';
import {STORE, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const MB = 1024 * 1024;
// Each value well under the server's 390,000-byte entry limit.
const VALUE_BYTES = 100_000;
// The whole backlog, on both stores (moto, one request at a time, takes it in ~20 s).
const BACKLOG_BYTES = 20 * MB;
const ITEMS = Math.ceil(BACKLOG_BYTES / VALUE_BYTES);

const appMutators = {
  ...mutators,
  async setItem(tx, {key, value}) {
    await tx.set(`item/${key}`, value);
  },
};

/** ~VALUE_BYTES of text that says which item it is (checked on the server). */
const valueOf = i => `${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));

// Back-off capped low: the test waits for retries, not for Replicache's default minute.
const requestOptions = {minDelayMs: 30, maxDelayMs: 500};

let server;
before(async () => {
  server = await startServer({label: 'large-push'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

/** Mutations made while the client cannot reach the server: an item and an increment each. */
async function makeBacklog(rep, items) {
  for (let i = 0; i < items; i++) {
    await rep.mutate.setItem({key: `k${i}`, value: valueOf(i)});
    await rep.mutate.increment(1);
  }
}

test('control: the default pusher sends the backlog in one push, refused 413 with maxBytes for ever; the splitting pusher adapts to it', async () => {
  const space = await server.createSpace();
  // No push URL: Replicache's default pusher sends nothing and the mutations stay pending.
  const rep = makeClient(server, space, {
    mutators: appMutators,
    pushURL: '',
    requestOptions,
    logSinks: [{log() {}}], // each refusal would be logged as an error
  });
  const items = Math.ceil((SERVER_MAX_BYTES + MB) / VALUE_BYTES);
  await makeBacklog(rep, items);
  assert.equal(await pendingCount(rep), 2 * items);

  const results = [];
  const defaultPusher = rep.pusher;
  rep.pusher = async (body, requestID) => {
    const result = await defaultPusher(body, requestID);
    results.push({mutations: body.mutations.length, result});
    return result;
  };
  rep.pushURL = server.pushURL(space);
  rep.push({now: true}).catch(() => {});
  // Refused, then retried and refused again: it would never sync.
  await waitFor(() => results.length >= 2, 30_000, {message: 'two push attempts'});
  for (const {mutations, result} of results) {
    assert.equal(mutations, 2 * items, 'the whole backlog in one push');
    assert.equal(result.httpRequestInfo.httpStatusCode, 413);
    const refusal = JSON.parse(result.httpRequestInfo.errorMessage);
    assert.equal(refusal.error, 'PayloadTooLarge');
    assert.equal(refusal.maxBytes, SERVER_MAX_BYTES);
  }
  assert.equal(await pendingCount(rep), 2 * items);
  assert.equal((await serverState(server, space)).count, undefined, 'nothing applied');

  // The same stuck client given the splitting pusher, set to a limit above the server's:
  // the first request is refused, the pusher takes the announced limit and syncs.
  const requests = [];
  rep.pusher = makeSplittingPusher({
    url: () => rep.pushURL,
    maxBytes: 4 * SERVER_MAX_BYTES,
    onRequest: r => requests.push(r),
  });
  rep.push({now: true}).catch(() => {});
  await waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0;
  }, 60_000, {message: 'the stuck backlog to be confirmed', intervalMs: 200});
  assert.equal(requests[0].status, 413);
  assert.equal(requests[0].mutations, 2 * items);
  assert.ok(requests.length > 2, `${requests.length} requests`);
  assert.ok(requests.slice(1).every(r => r.status === 200 && r.bytes <= SERVER_MAX_BYTES - 2 * MB));
  assert.equal(rep.pusher.maxBytes, SERVER_MAX_BYTES - 2 * MB);
  assert.equal((await serverState(server, space)).count, items);
  await rep.close();
});

test(`a ${Math.round(BACKLOG_BYTES / MB)} MB backlog made offline syncs completely through the splitting pusher`, async () => {
  const space = await server.createSpace();
  const requests = [];
  let offline = true;
  let refusedOffline = 0;
  const pusher = makeSplittingPusher({
    url: () => rep.pushURL,
    auth: () => rep.auth,
    // Offline: the network fails as fetch does without one.
    fetch: async (url, init) => {
      if (offline) {
        refusedOffline++;
        throw new TypeError('fetch failed');
      }
      const res = await fetch(url, init);
      requests.push({
        bytes: Buffer.byteLength(init.body),
        mutations: JSON.parse(init.body).mutations.map(m => m.id),
        status: res.status,
      });
      return res;
    },
  });
  const rep = makeClient(server, space, {mutators: appMutators, pusher, requestOptions});
  await makeBacklog(rep, ITEMS);
  const total = 2 * ITEMS;
  assert.equal(await pendingCount(rep), total);
  // Replicache tries to push and cannot reach the server.
  await waitFor(() => refusedOffline > 0, 10_000, {message: 'a push attempt while offline'});
  assert.equal(await pendingCount(rep), total);
  assert.equal(requests.length, 0);

  offline = false;
  const started = Date.now();
  rep.push({now: true}).catch(() => {});
  await waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0;
  }, 90_000, {message: 'the backlog to be confirmed', intervalMs: 200});
  const seconds = (Date.now() - started) / 1000;

  // More than one request, each within the limit, none refused.
  const sent = requests.reduce((n, r) => n + r.bytes, 0);
  assert.ok(requests.length > 1, `${requests.length} request(s)`);
  for (const r of requests) {
    assert.ok(r.bytes <= pusher.maxBytes && pusher.maxBytes < SERVER_MAX_BYTES, `${r.bytes} bytes`);
    assert.equal(r.status, 200);
  }
  assert.ok(sent >= BACKLOG_BYTES, `${sent} bytes sent`);
  // Every mutation applied exactly once: the count is the number of increments, every
  // item is there, and the server confirms the last mutation ID.
  const state = await serverState(server, space);
  assert.equal(state.count, ITEMS);
  for (let i = 0; i < ITEMS; i++) {
    const value = state[`item/k${i}`];
    assert.ok(value === valueOf(i), `item ${i}: ${String(value).slice(0, 20)}…`);
  }
  assert.equal(Object.keys(state).length, ITEMS + 1);
  assert.deepEqual(await serverLMIDs(server, space, await rep.clientGroupID), {[rep.clientID]: total});
  assert.equal(await readCount(rep), ITEMS);
  console.log(
    `# ${STORE}: ${total} mutations, ${(sent / MB).toFixed(1)} MB in ${requests.length} push requests ` +
      `(largest ${(Math.max(...requests.map(r => r.bytes)) / MB).toFixed(2)} MB), synced in ${seconds.toFixed(1)} s`,
  );
});
