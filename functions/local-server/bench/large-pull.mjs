// The first pull of a large space, direct and through the answer bucket: bytes on the
// wire and time, with the local server on DynamoDB and S3 both served by moto.
//
//   node functions/local-server/bench/large-pull.mjs <DYNAMODB_ENDPOINT> <MB>...
//
// LOCAL_SERVER_BIN: the server binary (default target/debug/local-server). Two servers
// share one table: one answers directly (no ANSWER_BUCKET), the other sends every pull
// through the bucket (ANSWER_LIMIT_BYTES=0). Values are random hex, which gzip halves.
// moto's S3 is not AWS's: the times say what the redirect costs here, not in AWS.

import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {setTimeout as delay} from 'node:timers/promises';
import {createServer} from 'node:net';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = process.env.LOCAL_SERVER_BIN || join(ROOT, 'target', 'debug', 'local-server');
const [endpoint, ...sizes] = process.argv.slice(2);
if (!endpoint || sizes.length === 0) {
  console.error('usage: large-pull.mjs <DYNAMODB_ENDPOINT> <MB>...');
  process.exit(2);
}
const VALUE_CHARS = 100_000;
const RUNS = 3;

const freePort = () => new Promise((ok, fail) => {
  const s = createServer();
  s.on('error', fail);
  s.listen(0, '127.0.0.1', () => {
    const {port} = s.address();
    s.close(() => ok(port));
  });
});

async function start(env) {
  const port = await freePort();
  const child = spawn(BIN, [], {
    env: {...process.env, HOST: '127.0.0.1', PORT: String(port), DYNAMODB_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1',
      RUST_LOG: 'warn', ...env},
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}/api/replicache`;
  for (let i = 0; i < 400; i++) {
    try {
      await fetch(`${base}/spaceExists`, {method: 'POST', body: '{"spaceID":"probe"}'});
      return {base, stop: () => child.kill('SIGTERM')};
    } catch {
      await delay(50);
    }
  }
  throw new Error('the local server did not start');
}

async function post(url, body) {
  const res = await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** One pull from scratch, as the client's fetch does it: bytes received and ms. */
async function pull(base, space) {
  const started = performance.now();
  let bytes = 0;
  const res = await fetch(`${base}/pull?spaceID=${space}`, {
    method: 'POST', redirect: 'manual',
    headers: {'content-type': 'application/json', 'accept-encoding': 'gzip', 'x-replicache-requestid': 'bench-0-0'},
    body: JSON.stringify({pullVersion: 1, clientGroupID: 'bench', profileID: 'p', schemaVersion: '', cookie: null}),
  });
  let final = res;
  if (res.status === 303) {
    bytes += Number(res.headers.get('content-length') ?? 0);
    await res.arrayBuffer();
    final = await fetch(res.headers.get('location'), {headers: {'accept-encoding': 'gzip', 'x-replicache-requestid': 'bench-0-0'}});
  }
  if (final.status !== 200) throw new Error(`pull: ${final.status}`);
  bytes += Number(final.headers.get('content-length') ?? 0);
  const body = await final.json();
  return {status: res.status, bytes, ms: performance.now() - started, ops: body.patch.length};
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const table = `bench-${randomBytes(4).toString('hex')}`;
const direct = await start({TABLE_NAME: table});
const spilled = await start({TABLE_NAME: table, ANSWER_BUCKET: `${table}-answers`, ANSWER_LIMIT_BYTES: '0'});
try {
  console.log('| space | path | first response | bytes received (gzip) | patch ops | pull ms (median of 3) |');
  console.log('|---|---|---|---|---|---|');
  for (const mb of sizes.map(Number)) {
    const {spaceID} = await post(`${direct.base}/createSpace`, {});
    const items = Math.ceil((mb * 1_000_000) / VALUE_CHARS);
    let id = 0;
    for (let i = 0; i < items; i += 20) {
      const mutations = [];
      for (let j = i; j < Math.min(i + 20, items); j++) {
        mutations.push({clientID: 'w', id: ++id, name: 'setItem', timestamp: 1,
          args: {key: `k${j}`, value: randomBytes(VALUE_CHARS / 2).toString('hex')}});
      }
      await post(`${direct.base}/push?spaceID=${spaceID}`, {pushVersion: 1, clientGroupID: 'wg', profileID: 'p', schemaVersion: '', mutations});
    }
    for (const [name, server] of [['direct', direct], ['S3 (moto)', spilled]]) {
      const runs = [];
      for (let r = 0; r < RUNS; r++) runs.push(await pull(server.base, spaceID));
      const last = runs[runs.length - 1];
      console.log(`| ${mb} MB | ${name} | ${last.status} | ${last.bytes} | ${last.ops} | ${median(runs.map(x => x.ms)).toFixed(0)} |`);
    }
  }
} finally {
  direct.stop();
  spilled.stop();
}
