// AUTH_MODE=jwt with the real Replicache client: a token that expires (401, getAuth, sync
// resumes, nothing lost or doubled), and what a stranger, a member and anyone with the
// link of an open space can do. Tokens come from the development sign-in.
// Needs a WebSocket client for the poke tests: Node 22+, or Node 20 with --experimental-websocket.

import assert from 'node:assert/strict';
import {after, afterEach, before, test} from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {closeAllClients, makeClient, pendingCount, readCount} from './lib/client.mjs';
import {post} from './lib/protocol.mjs';
import {randomID, startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const skipSockets = typeof WebSocket === 'undefined' && !process.env.E2E_REQUIRE_WEBSOCKET &&
  'no WebSocket client: run node with --experimental-websocket';

/** Development tokens live this long on the first server. */
const SHORT_TTL_SECS = 2;

let shortLived; // tokens expire after SHORT_TTL_SECS
let server; // tokens live an hour
const sockets = new Set();
before(async () => {
  shortLived = await startServer({label: 'auth-expiry', env: {AUTH_MODE: 'jwt', DEV_TOKEN_TTL_SECS: String(SHORT_TTL_SECS)}});
  server = await startServer({label: 'auth', env: {AUTH_MODE: 'jwt'}});
});
afterEach(() => {
  for (const ws of sockets) ws.close();
  sockets.clear();
  stopFetchLog();
});
after(async () => {
  await closeAllClients();
  await shortLived?.stop();
  await server?.stop();
});

const bearer = token => `Bearer ${token}`;

/** For clients whose refusals are expected: Replicache logs each one otherwise. */
const quiet = {logSinks: [{log() {}}]};

/** POSTs `body` to `path` of `srv` as the user of `token`. */
function api(srv, token, path, body) {
  return post(`${srv.baseURL}${path}`, body, {headers: token ? {authorization: bearer(token)} : {}});
}

function rawPush(srv, token, spaceID, clientGroupID, mutations) {
  return api(srv, token, `/api/replicache/push?spaceID=${spaceID}`, {
    pushVersion: 1, clientGroupID, profileID: 'p-e2e', schemaVersion: '',
    mutations: mutations.map(m => ({timestamp: 1, ...m})),
  });
}

function rawPull(srv, token, spaceID, clientGroupID) {
  return api(srv, token, `/api/replicache/pull?spaceID=${spaceID}`, {
    pullVersion: 1, clientGroupID, profileID: 'p-e2e', schemaVersion: '', cookie: null,
  });
}

/** What the owner sees: a full pull of their client group, and who has access. */
async function ownerView(srv, token, spaceID, clientGroupID) {
  const pulled = await rawPull(srv, token, spaceID, clientGroupID);
  assert.equal(pulled.status, 200, pulled.text);
  const access = await api(srv, token, `/api/replicache/spaceAccess?spaceID=${spaceID}`, {});
  assert.equal(access.status, 200, access.text);
  return {pull: pulled.json, access: access.json};
}

async function spaceExists(srv, token, spaceID) {
  const res = await api(srv, token, '/api/replicache/spaceExists', {spaceID});
  assert.equal(res.status, 200, res.text);
  return res.json.spaceExists;
}

function assertRefused(res, status, error) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error, error, res.text);
}

// Every sync request the clients make, with its answer, by wrapping the global fetch
// (Replicache's default pusher and puller call it at request time).
let fetchLog = null;
let realFetch = null;
function startFetchLog() {
  fetchLog = [];
  realFetch = globalThis.fetch;
  const log = fetchLog;
  const original = realFetch;
  globalThis.fetch = async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const res = await original(input, init);
    if (url.pathname.startsWith('/api/replicache/')) {
      log.push({
        route: url.pathname.split('/').pop(),
        space: url.searchParams.get('spaceID'),
        auth: request.headers.get('authorization') ?? '',
        status: res.status,
      });
    }
    return res;
  };
  return log;
}
function stopFetchLog() {
  if (realFetch) globalThis.fetch = realFetch;
  realFetch = null;
  fetchLog = null;
}

/** Opens a poke socket; resolves once open, rejects when refused. */
function openPokeSocket(url, onPoke = () => {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    sockets.add(ws);
    ws.addEventListener('message', event => {
      if (event.data === 'poke') onPoke();
    });
    ws.addEventListener('open', () => resolve(ws), {once: true});
    ws.addEventListener('error', () => reject(new Error('poke socket refused')), {once: true});
  });
}

/** Pulls until the client has nothing pending and reads `count`. */
async function synced(rep, count, message) {
  await waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0 && (await readCount(rep)) === count;
  }, 20_000, {message, intervalMs: 50});
}

// ---------------------------------------------------------------------------------------

test('an expired token gets a 401, the client calls getAuth, and sync resumes with nothing lost or doubled', async () => {
  const srv = shortLived;
  const first = await srv.signIn('alice');
  const space = await srv.createSpace(undefined, {token: first});
  const log = startFetchLog();
  const rep = makeClient(srv, space, {auth: bearer(first), ...quiet});
  const issued = [];
  rep.getAuth = async () => {
    const token = await srv.signIn('alice');
    issued.push(token);
    return bearer(token);
  };

  for (let i = 0; i < 5; i++) await rep.mutate.increment(1);
  await synced(rep, 5, 'the first five increments to sync');

  // Past the token's lifetime (it ends within TTL + 1 s of its issue, at a whole second).
  await delay((SHORT_TTL_SECS + 1) * 1000 + 200);
  const expiredAt = log.length;
  // Mutations made with an expired token: their push is refused, then retried.
  for (let i = 0; i < 7; i++) await rep.mutate.increment(1);
  // No pull yet (one would meet the 401 first): the push alone must recover.
  await waitFor(() => log.slice(expiredAt).some(e => e.route === 'push' && e.status === 200), 20_000,
    {message: 'a push to go through after the token expired'});
  const afterExpiry = log.slice(expiredAt);
  const refusedPush = afterExpiry.findIndex(e => e.route === 'push' && e.status === 401);
  assert.ok(refusedPush >= 0, `a push refused with 401: ${JSON.stringify(afterExpiry)}`);
  assert.ok(issued.length >= 1, 'getAuth was called');
  const retried = afterExpiry.slice(refusedPush).find(e => e.route === 'push' && e.status === 200);
  assert.ok(retried, 'the push went through');
  assert.notEqual(retried.auth, afterExpiry[refusedPush].auth, 'with another token');
  assert.ok(issued.map(bearer).includes(retried.auth), 'the one getAuth returned');
  await synced(rep, 12, 'the later increments to sync');

  // A pull alone, after the new token expired in turn.
  await delay((SHORT_TTL_SECS + 1) * 1000 + 200);
  const pullFrom = log.length;
  const calls = issued.length;
  await waitFor(async () => {
    await rep.pull();
    const since = log.slice(pullFrom);
    const refused = since.findIndex(e => e.route === 'pull' && e.status === 401);
    return refused >= 0 && since.slice(refused).some(e => e.route === 'pull' && e.status === 200);
  }, 20_000, {message: 'a pull refused with 401, then answered with a new token', intervalMs: 100});
  assert.ok(issued.length > calls, 'getAuth was called again');

  // Exactly the twelve increments, each once, and the client's last mutation ID.
  const token = await srv.signIn('alice');
  const view = await rawPull(srv, token, space, await rep.clientGroupID);
  assert.equal(view.status, 200, view.text);
  assert.deepEqual(view.json.patch, [{op: 'clear'}, {op: 'put', key: 'count', value: 12}]);
  assert.deepEqual(view.json.lastMutationIDChanges, {[rep.clientID]: 12});
  assert.equal(await readCount(rep), 12);
  assert.equal(log.filter(e => e.status !== 200 && e.status !== 401).length, 0,
    `no other failures: ${JSON.stringify(log.filter(e => e.status !== 200))}`);
});

test('without a token every route answers 401', async () => {
  const token = await server.signIn('alice');
  const space = await server.createSpace(undefined, {token});
  for (const [path, body] of [
    ['/api/replicache/createSpace', {}],
    ['/api/replicache/spaceExists', {spaceID: space}],
    [`/api/replicache/spaceAccess?spaceID=${space}`, {}],
    [`/api/replicache/pull?spaceID=${space}`, {pullVersion: 1, clientGroupID: 'g', profileID: 'p', schemaVersion: '', cookie: null}],
    [`/api/replicache/push?spaceID=${space}`, {pushVersion: 1, clientGroupID: 'g', profileID: 'p', schemaVersion: '', mutations: []}],
  ]) {
    for (const auth of [undefined, 'Bearer not-a-token', token]) {
      const res = await post(`${server.baseURL}${path}`, body, {headers: auth ? {authorization: auth} : {}});
      assertRefused(res, 401, 'Unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  }
});

test('a stranger\'s real client gets nothing of a private space and changes nothing', {skip: skipSockets}, async () => {
  const aliceToken = await server.signIn('alice');
  const bobToken = await server.signIn('bob');
  const space = await server.createSpace(undefined, {token: aliceToken});
  const alice = makeClient(server, space, {auth: bearer(aliceToken)});
  for (let i = 0; i < 3; i++) await alice.mutate.increment(1);
  await synced(alice, 3, 'alice to sync');
  const aliceGroup = await alice.clientGroupID;
  const before = await ownerView(server, aliceToken, space, aliceGroup);
  assert.deepEqual(before.access, {owner: 'alice', members: [], link: 'members'});

  // Bob's client, pointed at Alice's space: every push and pull is "not found", which is
  // no reason to ask for another token.
  const log = startFetchLog();
  const bob = makeClient(server, space, {auth: bearer(bobToken), ...quiet});
  let bobAsked = 0;
  bob.getAuth = async () => {
    bobAsked++;
    return bearer(bobToken);
  };
  await bob.mutate.increment(100);
  await waitFor(async () => {
    await bob.pull();
    const mine = log.filter(e => e.auth === bearer(bobToken));
    return mine.some(e => e.route === 'push' && e.status === 404) && mine.some(e => e.route === 'pull' && e.status === 404);
  }, 20_000, {message: 'bob\'s push and pull to be refused', intervalMs: 100});
  assert.ok(log.filter(e => e.auth === bearer(bobToken)).every(e => e.status === 404), JSON.stringify(log));
  assert.equal(bobAsked, 0);
  assert.equal(await readCount(bob), 100, 'only his own optimistic change: nothing of Alice\'s');
  assert.equal(await pendingCount(bob), 1);

  // Nor with Alice's client group and client IDs (which he would have learned somehow).
  const hijack = await rawPush(server, bobToken, space, aliceGroup,
    [{clientID: alice.clientID, id: 4, name: 'increment', args: 1000}]);
  assertRefused(hijack, 404, 'SpaceNotFound');
  assertRefused(await rawPull(server, bobToken, space, aliceGroup), 404, 'SpaceNotFound');
  // The same answers as for a space that does not exist.
  const unknown = randomID('nosuchspace');
  const forUnknown = await rawPush(server, bobToken, unknown, aliceGroup,
    [{clientID: alice.clientID, id: 4, name: 'increment', args: 1000}]);
  assert.deepEqual([hijack.status, hijack.json], [forUnknown.status, forUnknown.json]);

  // Nor does he learn it exists, open its poke socket, or let himself in.
  assert.equal(await spaceExists(server, bobToken, space), false);
  assert.equal(await spaceExists(server, aliceToken, space), true);
  await assert.rejects(openPokeSocket(server.pokeURL(space, bobToken)));
  await assert.rejects(openPokeSocket(server.pokeURL(space)), 'no token: refused');
  await openPokeSocket(server.pokeURL(space, aliceToken));
  assertRefused(await api(server, bobToken, `/api/replicache/spaceAccess?spaceID=${space}`, {add: ['bob']}), 404, 'SpaceNotFound');

  assert.deepEqual(await ownerView(server, aliceToken, space, aliceGroup), before, 'nothing changed');
  await synced(alice, 3, 'alice to still see 3');
});

test('a member syncs with the owner through pokes, but never in the owner\'s client group', {skip: skipSockets}, async () => {
  const aliceToken = await server.signIn('alice');
  const bobToken = await server.signIn('bob');
  const carolToken = await server.signIn('carol');
  const space = await server.createSpace(undefined, {token: aliceToken});
  const shared = await api(server, aliceToken, `/api/replicache/spaceAccess?spaceID=${space}`, {add: ['bob']});
  assert.equal(shared.status, 200, shared.text);
  assert.deepEqual(shared.json, {owner: 'alice', members: ['bob'], link: 'members'});

  const alice = makeClient(server, space, {auth: bearer(aliceToken)});
  const bob = makeClient(server, space, {auth: bearer(bobToken), ...quiet});
  // As an app does: every client pulls when poked.
  await openPokeSocket(server.pokeURL(space, aliceToken), () => alice.pull());
  await openPokeSocket(server.pokeURL(space, bobToken), () => bob.pull());
  for (let i = 0; i < 3; i++) await alice.mutate.increment(1);
  for (let i = 0; i < 2; i++) await bob.mutate.increment(1);
  // No pull() here: pokes alone bring each client the other's changes.
  for (const [rep, who] of [[alice, 'alice'], [bob, 'bob']]) {
    await waitFor(async () => (await readCount(rep)) === 5 && (await pendingCount(rep)) === 0, 20_000,
      {message: `${who} to see 5 through pokes`});
  }

  const aliceGroup = await alice.clientGroupID;
  const before = await ownerView(server, aliceToken, space, aliceGroup);
  assert.deepEqual(before.pull.lastMutationIDChanges, {[alice.clientID]: 3});
  // Bob, a member, still cannot push or pull as Alice's client group, nor share the space.
  assertRefused(await rawPush(server, bobToken, space, aliceGroup,
    [{clientID: alice.clientID, id: 4, name: 'increment', args: 1000}]), 403, 'Forbidden');
  assertRefused(await rawPush(server, bobToken, space, aliceGroup,
    [{clientID: randomID('c'), id: 1, name: 'increment', args: 1000}]), 403, 'Forbidden');
  assertRefused(await rawPull(server, bobToken, space, aliceGroup), 403, 'Forbidden');
  assertRefused(await api(server, bobToken, `/api/replicache/spaceAccess?spaceID=${space}`, {add: ['carol']}), 403, 'Forbidden');
  // Carol, who is not a member, gets nothing.
  assert.equal(await spaceExists(server, carolToken, space), false);
  assertRefused(await rawPull(server, carolToken, space, randomID('g')), 404, 'SpaceNotFound');
  await assert.rejects(openPokeSocket(server.pokeURL(space, carolToken)));
  assert.deepEqual(await ownerView(server, aliceToken, space, aliceGroup), before, 'nothing changed');

  // Removed, Bob's client is refused from then on.
  const removed = await api(server, aliceToken, `/api/replicache/spaceAccess?spaceID=${space}`, {remove: ['bob']});
  assert.deepEqual(removed.json.members, []);
  const log = startFetchLog();
  await bob.mutate.increment(50);
  await waitFor(async () => log.some(e => e.route === 'push' && e.status === 404), 20_000,
    {message: 'bob\'s push to be refused after his removal'});
  assert.deepEqual((await ownerView(server, aliceToken, space, aliceGroup)).pull.patch,
    [{op: 'clear'}, {op: 'put', key: 'count', value: 5}]);
});

test('a space open to anyone with its link syncs for every signed-in user', async () => {
  const aliceToken = await server.signIn('alice');
  const carolToken = await server.signIn('carol');
  const space = await server.createSpace(undefined, {token: aliceToken, link: 'open'});
  assert.equal(await spaceExists(server, carolToken, space), true);
  const alice = makeClient(server, space, {auth: bearer(aliceToken)});
  const carol = makeClient(server, space, {auth: bearer(carolToken)});
  await alice.mutate.increment(2);
  await carol.mutate.increment(3);
  await synced(alice, 5, 'alice to see 5');
  await synced(carol, 5, 'carol to see 5');
  // Only its owner says who has access.
  assertRefused(await api(server, carolToken, `/api/replicache/spaceAccess?spaceID=${space}`, {link: 'members'}), 403, 'Forbidden');
  // Made private again, it is Alice's alone.
  const closed = await api(server, aliceToken, `/api/replicache/spaceAccess?spaceID=${space}`, {link: 'members'});
  assert.equal(closed.json.link, 'members');
  assert.equal(await spaceExists(server, carolToken, space), false);
});
