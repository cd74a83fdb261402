// Unit tests of the client's configuration rules and mutators (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchConfigFile, pageOptions, resolveConfig } from '../src/config.js';
import { makeMutators } from '../src/mutators.js';

const local = { origin: 'http://127.0.0.1:8080', protocol: 'http:', host: '127.0.0.1:8080' };
const hosted = { origin: 'https://app.example.com', protocol: 'https:', host: 'app.example.com' };

test('defaults to the page origin (the local server)', () => {
  assert.deepEqual(resolveConfig({ location: local }), {
    httpApiUrl: 'http://127.0.0.1:8080',
    webSocketUrl: 'ws://127.0.0.1:8080/api/replicache/poke',
    source: 'page origin',
  });
  const https = resolveConfig({ file: {}, env: {}, location: hosted });
  assert.equal(https.webSocketUrl, 'wss://app.example.com/api/replicache/poke');
  // Empty strings and junk count as absent.
  assert.deepEqual(
    resolveConfig({ file: { httpApiUrl: ' ', webSocketUrl: '' }, env: { VITE_HTTP_API_URL: '' }, location: local }),
    resolveConfig({ location: local }),
  );
  assert.deepEqual(resolveConfig({ file: [1], location: local }), resolveConfig({ location: local }));
});

test('config.json wins over build-time variables, which win over the origin', () => {
  const env = {
    VITE_HTTP_API_URL: 'https://build.example.com/',
    VITE_WEBSOCKET_URL: 'wss://ws-build.example.com/live',
  };
  assert.deepEqual(resolveConfig({ env, location: local }), {
    httpApiUrl: 'https://build.example.com',
    webSocketUrl: 'wss://ws-build.example.com/live',
    source: 'build',
  });
  const file = {
    httpApiUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com',
    webSocketUrl: 'wss://def.execute-api.eu-west-1.amazonaws.com/live',
  };
  assert.deepEqual(resolveConfig({ file, env, location: local }), { ...file, source: 'config.json' });
});

test('an HTTP API URL alone implies the poke socket beside it', () => {
  const c = resolveConfig({ file: { httpApiUrl: 'http://localhost:9000' }, location: hosted });
  assert.equal(c.webSocketUrl, 'ws://localhost:9000/api/replicache/poke');
  const s = resolveConfig({ env: { VITE_HTTP_API_URL: 'https://api.example.com' }, location: local });
  assert.equal(s.webSocketUrl, 'wss://api.example.com/api/replicache/poke');
});

test('fetchConfigFile treats missing, empty and broken files as {}', async () => {
  const fake = (status, text) => async () => ({ ok: status === 200, status, text: async () => text });
  assert.deepEqual(await fetchConfigFile('x', fake(404, 'not found')), {});
  assert.deepEqual(await fetchConfigFile('x', fake(200, '')), {});
  assert.deepEqual(await fetchConfigFile('x', fake(200, '<!doctype html>')), {});
  assert.deepEqual(await fetchConfigFile('x', fake(200, '"str"')), {});
  assert.deepEqual(await fetchConfigFile('x', async () => { throw new TypeError('offline'); }), {});
  assert.deepEqual(await fetchConfigFile('x', fake(200, '{"httpApiUrl":"h"}')), { httpApiUrl: 'h' });
});

test('page options: pullInterval and the wrong-increment challenge', () => {
  assert.deepEqual(pageOptions(''), { pullInterval: 60_000, wrongIncrement: false });
  assert.equal(pageOptions('?pullInterval=off').pullInterval, null);
  assert.equal(pageOptions('?pullInterval=0').pullInterval, null);
  assert.equal(pageOptions('?pullInterval=5000').pullInterval, 5000);
  assert.equal(pageOptions('?pullInterval=junk').pullInterval, 60_000);
  assert.equal(pageOptions('?wrongIncrement').wrongIncrement, true);
  assert.equal(pageOptions('?wrongIncrement=1').wrongIncrement, true);
  assert.equal(pageOptions('?wrongIncrement=0').wrongIncrement, false);
  assert.equal(pageOptions('', { VITE_WRONG_INCREMENT: '1' }).wrongIncrement, true);
  assert.equal(pageOptions('', { VITE_WRONG_INCREMENT: 'false' }).wrongIncrement, false);
  assert.equal(pageOptions('?wrongIncrement=0', { VITE_WRONG_INCREMENT: '1' }).wrongIncrement, false);
  assert.equal(pageOptions('', {}, { wrongIncrement: true }).wrongIncrement, true);
});

/** A minimal WriteTransaction over a Map. */
function memTx(map) {
  return { get: async (k) => map.get(k), set: async (k, v) => void map.set(k, v) };
}

test('increment matches the server: count = (count ?? 0) + delta', async () => {
  const { increment } = makeMutators();
  const m = new Map();
  await increment(memTx(m), 1);
  assert.equal(m.get('count'), 1);
  await increment(memTx(m), 5);
  await increment(memTx(m), -2);
  assert.equal(m.get('count'), 4);
  const wrong = makeMutators({ wrongIncrement: true }).increment;
  const w = new Map();
  await wrong(memTx(w), 1);
  assert.equal(w.get('count'), 2);
});
