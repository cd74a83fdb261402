// A space whose first pull is far larger than the server sends directly: on DynamoDB the
// local server stands in for the pull function (ANSWER_BUCKET on moto's S3, a small
// ANSWER_LIMIT_BYTES), answers 303 to a presigned URL, and the unmodified replicache
// client's puller follows it; on SQLite every answer is direct. Either way a new client
// syncs the whole space.

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {startServer, randomID, STORE} from './lib/server.mjs';
import {makeClient, closeAllClients} from './lib/client.mjs';
import {waitFor} from './lib/wait.mjs';

const LIMIT = 100_000;
const ITEMS = 60;
// Hex of random bytes: gzip halves it at best, so the pull stays well over 3 x LIMIT.
const VALUE_BYTES = 10_000;

let server;

before(async () => {
  const env = STORE === 'dynamodb'
    ? {ANSWER_BUCKET: randomID('answers-').toLowerCase(), ANSWER_LIMIT_BYTES: String(LIMIT)}
    : {};
  server = await startServer({label: 'large-pull', env});
});

after(async () => {
  await closeAllClients();
  await server?.stop();
});

async function fill(spaceID) {
  const expected = new Map();
  let id = 0;
  for (let batch = 0; batch < ITEMS / 20; batch++) {
    const mutations = [];
    for (let i = 0; i < 20; i++) {
      const key = `k${batch * 20 + i}`;
      const value = {text: randomBytes(VALUE_BYTES / 2).toString('hex'), n: batch * 20 + i};
      expected.set(`item/${key}`, value);
      mutations.push({clientID: 'writer', id: ++id, name: 'setItem', args: {key, value}, timestamp: 1});
    }
    const res = await fetch(server.pushURL(spaceID), {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({pushVersion: 1, clientGroupID: 'writer-group', profileID: 'p', schemaVersion: '', mutations}),
    });
    assert.equal(res.status, 200, await res.text());
  }
  return expected;
}

test(`a new client syncs a space whose first pull is over 3x the limit (${STORE})`, async () => {
  const spaceID = await server.createSpace();
  const expected = await fill(spaceID);

  // The first pull as the puller sends it, not followed: what the server answers.
  const pull = () => fetch(server.pullURL(spaceID), {
    method: 'POST',
    redirect: 'manual',
    headers: {'content-type': 'application/json', 'x-replicache-requestid': 'probe-0-0', 'accept-encoding': 'gzip'},
    body: JSON.stringify({pullVersion: 1, clientGroupID: randomID('probe-'), profileID: 'p', schemaVersion: '', cookie: null}),
  });
  const res = await pull();
  if (STORE === 'dynamodb') {
    const note = await res.text();
    assert.equal(res.status, 303, note);
    const location = res.headers.get('location');
    assert.match(location, /X-Amz-Signature=/);
    assert.equal(JSON.parse(note).redirect, 'SeeOther');
    // The stored answer, gzipped as the direct one would be: over 3 x the limit.
    const stored = await fetch(location, {headers: {'accept-encoding': 'gzip'}});
    assert.equal(stored.status, 200);
    assert.equal(stored.headers.get('content-encoding'), 'gzip');
    const storedBytes = Number(stored.headers.get('content-length'));
    assert.ok(storedBytes > 3 * LIMIT, `${storedBytes} bytes stored`);
    assert.equal((await stored.json()).patch.length, ITEMS + 1);
  } else {
    assert.equal(res.status, 200, 'SQLite answers directly, whatever the size');
    assert.equal(res.headers.get('location'), null);
    const body = await res.arrayBuffer();
    assert.ok(body.byteLength > 3 * LIMIT, `${body.byteLength} bytes`);
  }

  // The real client, unmodified: its puller is a fetch POST, which follows the 303.
  const rep = makeClient(server, spaceID);
  const entries = await waitFor(async () => {
    const all = await rep.query(tx => tx.scan({prefix: 'item/'}).entries().toArray());
    return all.length === ITEMS ? all : null;
  }, 30_000, {message: `all ${ITEMS} items in the new client`});
  assert.deepEqual(new Map(entries), expected);
});
