// Cookies nobody can forge: a stranger's cookies from the future never move a space's
// version, and a genuine one (held across a restore of the data) gets a reset above it.

import assert from 'node:assert/strict';
import {copyFileSync, existsSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, test} from 'node:test';
import {closeAllClients, makeClient, pendingCount, pullAndReadCount} from './lib/client.mjs';
import {pullOK, rawPull, serverCount} from './lib/protocol.mjs';
import {STORE, randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const servers = [];
async function start(options) {
  const server = await startServer({label: 'cookies', ...options});
  servers.push(server);
  return server;
}
after(async () => {
  await closeAllClients();
  for (const server of servers) await server.stop();
});

/** Waits until `rep` has no pending mutations and shows `count`. */
async function settled(rep, count) {
  await waitFor(async () => {
    const shown = await pullAndReadCount(rep);
    return (await pendingCount(rep)) === 0 && shown === count;
  }, 30_000, {message: `client ${rep.clientID} to settle at count ${count}`, intervalMs: 50});
}

/** A puller that sends what Replicache's default puller sends and remembers each answer. */
function recordingPuller(url) {
  const puller = async request => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify(request),
    });
    const text = await res.text();
    const info = {httpStatusCode: res.status, errorMessage: res.status === 200 ? '' : text};
    if (res.status !== 200) return {httpRequestInfo: info};
    const response = JSON.parse(text);
    puller.answers.push(response);
    return {response, httpRequestInfo: info};
  };
  puller.answers = [];
  return puller;
}

test('forged cookies from the future never move the version; every group keeps syncing', async () => {
  const server = await start();
  const space = await server.createSpace();
  const a = makeClient(server, space);
  for (let i = 0; i < 3; i++) await a.mutate.increment(1);
  await settled(a, 3);
  const before = await pullOK(server, space, {cookie: null});

  const forged = [
    2 ** 53 - 1,
    2 ** 52,
    1e15,
    before.cookie.order + 1,
    {order: 2 ** 53 - 1, sig: 'AAAAAAAAAAAAAAAAAAAAAA'},
    {order: before.cookie.order + 1, sig: before.cookie.sig},
  ];
  for (const cookie of forged) {
    const res = await rawPull(server, space, {clientGroupID: randomID('stranger'), cookie});
    assert.equal(res.status, 400, `${JSON.stringify(cookie)}: ${res.text}`);
    assert.equal(res.json?.error, 'InvalidCookie', res.text);
  }
  const after = await pullOK(server, space, {cookie: null});
  assert.deepEqual(after.cookie, before.cookie, 'the version did not move');

  // The existing group pulls with its own cookie, pushes, pulls again.
  await a.mutate.increment(1);
  await settled(a, 4);
  // A new group pulls from null, then with the cookie it got.
  const b = makeClient(server, space);
  assert.equal(await pullAndReadCount(b), 4);
  await a.mutate.increment(1);
  await settled(a, 5);
  await waitFor(async () => (await pullAndReadCount(b)) === 5, 10_000, {message: 'B to see 5'});
  const fresh = await pullOK(server, space, {cookie: null});
  assert.ok(fresh.cookie.order < 1000, `the version stayed small: ${fresh.cookie.order}`);
  const again = await pullOK(server, space, {cookie: fresh.cookie});
  assert.deepEqual(again, {cookie: fresh.cookie, lastMutationIDChanges: {}, patch: []});
});

test('a genuine cookie from before a restore gets a reset above it', {skip: STORE !== 'sqlite' && 'restores a SQLite file'}, async () => {
  const first = await start();
  const {dataDir, port} = first;
  const space = await first.createSpace();
  const backupDir = mkdtempSync(join(tmpdir(), 'e2e-backup-'));
  try {
    const writer = makeClient(first, space);
    await writer.mutate.increment(1);
    await writer.mutate.increment(1);
    await settled(writer, 2);
    // A reader (another tab, its own group) that records what it is answered.
    const puller = recordingPuller(first.pullURL(space));
    const reader = makeClient(first, space, {puller});
    assert.equal(await pullAndReadCount(reader), 2);

    // A backup of the data at count 2 (taken while stopped: the file is whole).
    await first.stopKeepingData();
    const files = ['replicache.sqlite3', 'replicache.sqlite3-wal'];
    for (const f of files) {
      if (existsSync(join(dataDir, f))) copyFileSync(join(dataDir, f), join(backupDir, f));
    }
    const second = await start({dataDir, port});
    for (let i = 0; i < 3; i++) await writer.mutate.increment(1);
    await settled(writer, 5);
    await writer.close();
    await waitFor(async () => (await pullAndReadCount(reader)) === 5, 10_000, {message: 'the reader to see 5'});
    const held = puller.answers.at(-1).cookie;

    // The data goes back to the backup; the key stays (it is not in the database).
    await second.stopKeepingData();
    for (const f of ['replicache.sqlite3', 'replicache.sqlite3-wal', 'replicache.sqlite3-shm']) {
      rmSync(join(dataDir, f), {force: true});
      if (existsSync(join(backupDir, f))) copyFileSync(join(backupDir, f), join(dataDir, f));
    }
    const third = await start({dataDir, port});
    assert.equal(await serverCount(third, space), 2, 'the restored data');
    const restored = await pullOK(third, space, {cookie: null});
    assert.ok(restored.cookie.order < held.order, 'the restored version is below the held cookie');

    // The reader's next pull presents its cookie from the future: a reset above it.
    await waitFor(async () => (await pullAndReadCount(reader)) === 2, 10_000,
      {message: 'the reader to take the reset to the restored count'});
    const reset = puller.answers.at(-1);
    assert.ok(reset.cookie.order > held.order, `reset cookie ${reset.cookie.order} > ${held.order}`);
    assert.deepEqual(reset.patch, [{op: 'clear'}, {op: 'put', key: 'count', value: 2}]);
    const now = await pullOK(third, space, {cookie: null});
    assert.deepEqual(now.cookie, reset.cookie, 'the version moved past the held cookie');

    // Syncing goes on above the reset: a new tab increments, the reader follows.
    const fresh = makeClient(third, space);
    await fresh.mutate.increment(10);
    await settled(fresh, 12);
    await waitFor(async () => (await pullAndReadCount(reader)) === 12, 10_000, {message: 'the reader to see 12'});
    assert.ok(puller.answers.at(-1).cookie.order > reset.cookie.order);
  } finally {
    rmSync(backupDir, {recursive: true, force: true});
    rmSync(dataDir, {recursive: true, force: true});
  }
});
