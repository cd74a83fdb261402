// Protocol edge cases through raw HTTP.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {post, pullOK, rawPull, rawPush, serverCount, serverLMIDs} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';

let server;
before(async () => {
  server = await startServer({label: 'protocol'});
});
after(async () => {
  await server?.stop();
});

function assertJSONError(res, status) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof res.json?.error, 'string', `a JSON error body: ${res.text}`);
}

async function pushIncrements(space, clientGroupID, clientID, deltas, firstID = 1) {
  const res = await rawPush(server, space, {
    clientGroupID,
    mutations: deltas.map((args, i) => ({clientID, id: firstID + i, name: 'increment', args})),
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, {});
}

test('version-0 push and pull are answered VersionNotSupported and change nothing', async () => {
  const space = await server.createSpace();
  const push = await post(server.pushURL(space), {
    pushVersion: 0,
    clientID: 'c0',
    schemaVersion: '',
    profileID: 'p0',
    mutations: [{id: 1, name: 'increment', args: 5, timestamp: 1}],
  });
  assert.equal(push.status, 200, push.text);
  assert.deepEqual(push.json, {error: 'VersionNotSupported', versionType: 'push'});

  const pull = await post(server.pullURL(space), {
    pullVersion: 0,
    clientID: 'c0',
    schemaVersion: '',
    profileID: 'p0',
    cookie: null,
    lastMutationID: 0,
  });
  assert.equal(pull.status, 200, pull.text);
  assert.deepEqual(pull.json, {error: 'VersionNotSupported', versionType: 'pull'});

  assert.equal(await serverCount(server, space), undefined);
});

test('a pull from an unknown client group with a non-null cookie is answered incrementally', async () => {
  const space = await server.createSpace();
  const g1 = randomID('g');
  const c1 = randomID('c');
  await pushIncrements(space, g1, c1, [1]);
  const first = await pullOK(server, space, {clientGroupID: g1, cookie: null});
  assert.deepEqual(first.patch, [{op: 'clear'}, {op: 'put', key: 'count', value: 1}]);
  assert.deepEqual(first.lastMutationIDChanges, {[c1]: 1});
  assert.equal(typeof first.cookie.order, 'number', 'an object cookie ordered by `order`');
  assert.equal(typeof first.cookie.sig, 'string');

  await pushIncrements(space, g1, c1, [2], 2);
  const stranger = await pullOK(server, space, {clientGroupID: randomID('g'), cookie: first.cookie});
  assert.ok(stranger.cookie.order > first.cookie.order, `cookie ${stranger.cookie.order} > ${first.cookie.order}`);
  assert.deepEqual(stranger.patch, [{op: 'put', key: 'count', value: 3}]);
  assert.deepEqual(stranger.lastMutationIDChanges, {}, 'no other group\'s LMIDs');

  // Nothing new since: same cookie, nothing in it.
  const again = await pullOK(server, space, {clientGroupID: randomID('g'), cookie: stranger.cookie});
  assert.deepEqual(again, {cookie: stranger.cookie, lastMutationIDChanges: {}, patch: []});
});

test('cookies handed out by earlier servers (bare numbers) keep working', async () => {
  const space = await server.createSpace();
  const g = randomID('g');
  const c = randomID('c');
  await pushIncrements(space, g, c, [1, 2]);
  const current = (await pullOK(server, space, {clientGroupID: g})).cookie;

  // The bare number of the current cookie: nothing new.
  const same = await pullOK(server, space, {clientGroupID: g, cookie: current.order});
  assert.deepEqual(same, {cookie: current, lastMutationIDChanges: {}, patch: []});
  // An older one: what changed since, under the signed cookie.
  await pushIncrements(space, g, c, [4], 3);
  const after = await pullOK(server, space, {clientGroupID: g, cookie: current.order});
  assert.ok(after.cookie.order > current.order, `cookie ${after.cookie.order} > ${current.order}`);
  assert.deepEqual(after.patch, [{op: 'put', key: 'count', value: 7}]);
  assert.deepEqual(after.lastMutationIDChanges, {[c]: 3});
  // Beyond the version, a bare number could be anybody's: refused, the version unmoved.
  const future = await rawPull(server, space, {clientGroupID: g, cookie: after.cookie.order + 1000});
  assertJSONError(future, 400);
  assert.equal(future.json.error, 'InvalidCookie');
  assert.deepEqual((await pullOK(server, space, {clientGroupID: g})).cookie, after.cookie);
});

test('an unknown space is a 404 JSON error', async () => {
  const space = randomID('nosuchspace');
  const push = await rawPush(server, space, {
    clientGroupID: 'g1',
    mutations: [{clientID: 'c1', id: 1, name: 'increment', args: 1}],
  });
  assertJSONError(push, 404);
  assertJSONError(await rawPull(server, space), 404);
  const exists = await post(`${server.baseURL}/api/replicache/spaceExists`, {spaceID: space});
  assert.deepEqual([exists.status, exists.json], [200, {spaceExists: false}]);
});

test('malformed JSON is a 400 JSON error', async () => {
  const space = await server.createSpace();
  const broken = '{"pullVersion": 1, "clientGroupID": ';
  assertJSONError(await post(server.pushURL(space), broken), 400);
  assertJSONError(await post(server.pullURL(space), broken), 400);
  assertJSONError(await post(`${server.baseURL}/api/replicache/createSpace`, broken), 400);
  // Well-formed JSON of the wrong shape too.
  assertJSONError(await rawPull(server, space, {cookie: 'abc'}), 400);
  assertJSONError(await post(server.pushURL(space), [1, 2]), 400);
  assert.equal(await serverCount(server, space), undefined);
});

test('duplicate mutations are skipped and mutations from the future are not applied', async () => {
  const space = await server.createSpace();
  const g = randomID('g');
  const c = randomID('c');
  await pushIncrements(space, g, c, [1, 2]);
  // Replaying 1..2 and adding 3.
  await pushIncrements(space, g, c, [1, 2, 4]);
  assert.equal(await serverCount(server, space), 7);
  // id 5 is expected; 6 is from the future.
  const future = await rawPush(server, space, {
    clientGroupID: g,
    mutations: [{clientID: c, id: 6, name: 'increment', args: 100}],
  });
  assert.equal(future.status, 200, future.text);
  assert.equal(await serverCount(server, space), 7);
  assert.deepEqual(await serverLMIDs(server, space, g), {[c]: 3});
});

test('values round-trip exactly and deletions arrive as del', async () => {
  const space = await server.createSpace();
  const g = randomID('g');
  const c = randomID('c');
  const value = {
    text: 'zß水🍌 "quoted" \\ \n',
    float: 0.1 + 0.2,
    tiny: 5e-324,
    big: Number.MAX_SAFE_INTEGER,
    negative: -1.5,
    nothing: null,
    nested: [[], {}, [1, [2, {deep: true}]], false],
  };
  const key = 'emoji-🍌/ünïcode key';
  const res = await rawPush(server, space, {
    clientGroupID: g,
    mutations: [
      {clientID: c, id: 1, name: 'setItem', args: {key, value}},
      {clientID: c, id: 2, name: 'setItem', args: {key: 'gone', value: 1}},
    ],
  });
  assert.equal(res.status, 200, res.text);
  const full = await pullOK(server, space, {clientGroupID: g});
  assert.deepEqual(full.patch[0], {op: 'clear'});
  assert.deepEqual(puts(full.patch.slice(1)), {[`item/${key}`]: value, 'item/gone': 1});

  const del = await rawPush(server, space, {
    clientGroupID: g,
    mutations: [{clientID: c, id: 3, name: 'deleteItem', args: {key: 'gone'}}],
  });
  assert.equal(del.status, 200, del.text);
  const incremental = await pullOK(server, space, {clientGroupID: g, cookie: full.cookie});
  assert.deepEqual(incremental.patch, [{op: 'del', key: 'item/gone'}]);
  assert.deepEqual(incremental.lastMutationIDChanges, {[c]: 3});
  // After a reset, a deleted key is simply absent.
  const fresh = await pullOK(server, space, {clientGroupID: g});
  assert.deepEqual(fresh.patch, [{op: 'clear'}, {op: 'put', key: `item/${key}`, value}]);
});

/** The put operations of a patch as key -> value; fails on anything but puts. */
function puts(patch) {
  const out = {};
  for (const op of patch) {
    assert.equal(op.op, 'put', JSON.stringify(op));
    out[op.key] = op.value;
  }
  return out;
}
