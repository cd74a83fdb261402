// The poke helper the web client uses (client/src/poke.js) with real Replicache clients:
// pokes alone keep clients in step, and a client that was away catches up when its
// socket reconnects, with no further push.
// Needs a WebSocket client: Node 22+, or Node 20 with --experimental-websocket.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {connectPokes} from '../../client/src/poke.js';
import {closeAllClients, makeClient, pendingCount, readCount} from './lib/client.mjs';
import {startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const skip = typeof WebSocket === 'undefined' && !process.env.E2E_REQUIRE_WEBSOCKET &&
  'no WebSocket client: run node with --experimental-websocket';

let server;
const helpers = [];
before(async () => {
  server = await startServer({label: 'poke-helper'});
});
after(async () => {
  for (const h of helpers) h.close();
  await closeAllClients();
  await server?.stop();
});

function pokesFor(spaceID, rep, options = {}) {
  const events = [];
  const helper = connectPokes({
    url: `${server.baseURL.replace(/^http/, 'ws')}/api/replicache/poke`,
    spaceID,
    rep,
    minBackoffMs: 50,
    maxBackoffMs: 200,
    onEvent: e => events.push(e.type),
    ...options,
  });
  helpers.push(helper);
  helper.events = events;
  return helper;
}

/**
 * A WebSocket whose connections the test can cut (as a network drop would) and whose
 * reconnects it can hold back until it lets them through.
 */
function cuttableWebSocket() {
  const live = new Set();
  let blocked = false;
  class Cuttable extends WebSocket {
    constructor(url, protocols) {
      // A blocked attempt goes to a port nothing listens on: it fails like a dead network.
      super(blocked ? 'ws://127.0.0.1:9/' : url, protocols);
      live.add(this);
      this.addEventListener('close', () => live.delete(this));
    }
  }
  return {
    Cuttable,
    cut() {
      blocked = true;
      for (const ws of live) ws.close();
    },
    restore() {
      blocked = false;
    },
  };
}

test('B sees A\'s increment through the poke alone, within 1 s', {skip}, async () => {
  const space = await server.createSpace();
  const a = makeClient(server, space); // pullInterval: null
  const b = makeClient(server, space);
  const pokesA = pokesFor(space, a);
  const pokesB = pokesFor(space, b);
  await waitFor(() => pokesA.connected && pokesB.connected, 5_000, {message: 'both sockets open'});
  assert.equal(await readCount(b), undefined);

  // B never pulls on its own (pullInterval: null): only a poke can bring it the change.
  await a.mutate.increment(1);
  await waitFor(async () => (await readCount(b)) === 1, 1_000, {message: 'B to see 1 through the poke'});
  assert.ok(pokesB.events.includes('poke'), `B received a poke: ${pokesB.events}`);
});

test('a client that was away sees what changed after its socket reconnects, with no further push', {skip}, async () => {
  const space = await server.createSpace();
  const a = makeClient(server, space);
  const b = makeClient(server, space);
  const network = cuttableWebSocket();
  const pokesB = pokesFor(space, b, {WebSocketImpl: network.Cuttable});
  pokesFor(space, a);
  await waitFor(() => pokesB.connected, 5_000, {message: 'B connected'});

  network.cut();
  await waitFor(() => !pokesB.connected, 5_000, {message: 'B disconnected'});
  for (let i = 0; i < 3; i++) await a.mutate.increment(1);
  await waitFor(async () => (await pendingCount(a)) === 0, 5_000, {message: 'A pushed'});
  // Away, B learns nothing.
  await new Promise(resolve => setTimeout(resolve, 300));
  assert.equal(await readCount(b), undefined, 'B cannot have pulled while away');

  const pokesBefore = pokesB.events.filter(e => e === 'poke').length;
  network.restore();
  await waitFor(async () => (await readCount(b)) === 3, 5_000, {message: 'B to catch up on reconnect'});
  assert.equal(pokesB.events.filter(e => e === 'poke').length, pokesBefore,
    'B caught up by the pull on reconnect, not by a poke');
});

test('connecting without a space or to an unknown space is refused', {skip}, async () => {
  for (const query of ['', '?spaceID=', '?spaceID=no-such-space']) {
    const ws = new WebSocket(`${server.baseURL.replace(/^http/, 'ws')}/api/replicache/poke${query}`);
    const outcome = await new Promise(resolve => {
      ws.addEventListener('open', () => resolve('open'), {once: true});
      ws.addEventListener('error', () => resolve('refused'), {once: true});
    });
    ws.close();
    assert.equal(outcome, 'refused', `poke socket with "${query}"`);
  }
  // And over plain HTTP, the refusal says why.
  const res = await fetch(`${server.baseURL}/api/replicache/poke?spaceID=no-such-space`);
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, 'SpaceNotFound');
});
