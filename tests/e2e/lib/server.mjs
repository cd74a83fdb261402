// Starts the local server binary for a test file and stops it afterwards.
//
// Store selection (env):
//   E2E_STORE=sqlite (default)  a fresh temporary DATA_DIR per server
//   E2E_STORE=dynamodb          DYNAMODB_ENDPOINT (required) and a fresh random TABLE_NAME
// LOCAL_SERVER_BIN overrides the binary (default: <repo>/target/debug/local-server).
// Server output goes to tests/artifacts/ (and the tail of it to stderr if it dies).

import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {basename, dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {setTimeout as delay} from 'node:timers/promises';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ARTIFACTS = join(REPO_ROOT, 'tests', 'artifacts');
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export const STORE = (process.env.E2E_STORE || 'sqlite').toLowerCase();
if (!['sqlite', 'dynamodb'].includes(STORE)) {
  throw new Error(`E2E_STORE must be "sqlite" or "dynamodb", not "${STORE}"`);
}

const running = new Set();
// A last resort if a test file crashes before its `after` hook ran.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export function randomID(prefix = '') {
  return prefix + randomBytes(9).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x');
}

/**
 * Starts a server; resolves once it answers HTTP. `label` names its log file.
 * `dataDir` and `port` restart a server on the data and port of an earlier one (SQLite
 * only); such a data directory is left in place on stop (its owner removes it).
 * `env` adds environment variables (e.g. {AUTH_MODE: 'jwt', DEV_TOKEN_TTL_SECS: '2'}).
 * Returns {baseURL, store, pushURL(space), pullURL(space), pokeURL(space, token?),
 * createSpace(spaceID?, {token, link}?), signIn(name), stop(), logTail()}.
 */
export async function startServer({label = 'e2e', dataDir, port, env} = {}) {
  const bin = process.env.LOCAL_SERVER_BIN || join(REPO_ROOT, 'target', 'debug', 'local-server');
  if (!existsSync(bin)) {
    throw new Error(`local server binary not found at ${bin}: run \`cargo build -p local-server\` (or set LOCAL_SERVER_BIN)`);
  }
  let lastError;
  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, label, {dataDir, port, env});
    } catch (e) {
      lastError = e;
      if (!e.retryable) break;
    }
  }
  throw lastError;
}

// The auth settings come from the test, never from the environment the tests run in.
const AUTH_VARIABLES = ['AUTH_MODE', 'JWT_SECRET_FILE', 'JWKS_FILE', 'JWT_ISSUER', 'JWT_AUDIENCE', 'DEV_TOKEN_TTL_SECS'];

async function startOnce(bin, label, {dataDir: givenDataDir, port: givenPort, env: extraEnv = {}}) {
  const port = givenPort ?? await freePort();
  const env = {...process.env, HOST: '127.0.0.1', PORT: String(port), NO_COLOR: '1'};
  delete env.DATA_DIR;
  delete env.TABLE_NAME;
  for (const name of AUTH_VARIABLES) delete env[name];
  Object.assign(env, extraEnv);
  let dataDir;
  let tableName;
  if (STORE === 'dynamodb') {
    if (!env.DYNAMODB_ENDPOINT) {
      throw new Error('E2E_STORE=dynamodb needs DYNAMODB_ENDPOINT (e.g. a moto server)');
    }
    tableName = randomID('e2e-');
    env.TABLE_NAME = tableName;
    env.AWS_ACCESS_KEY_ID ||= 'test';
    env.AWS_SECRET_ACCESS_KEY ||= 'test';
    env.AWS_REGION ||= 'us-east-1';
  } else {
    delete env.DYNAMODB_ENDPOINT;
    dataDir = givenDataDir ?? mkdtempSync(join(tmpdir(), 'e2e-data-'));
    env.DATA_DIR = dataDir;
  }
  const ownDataDir = givenDataDir ? undefined : dataDir;

  mkdirSync(ARTIFACTS, {recursive: true});
  const logPath = join(ARTIFACTS, `${STORE}-${basename(label)}-${process.pid}-${port}.log`);
  const logFile = createWriteStream(logPath);
  const tail = [];
  const child = spawn(bin, [], {env, stdio: ['ignore', 'pipe', 'pipe']});
  running.add(child);
  const exited = new Promise(ok => child.on('exit', (code, signal) => {
    running.delete(child);
    ok({code, signal});
  }));
  let exitInfo = null;
  exited.then(info => (exitInfo = info));
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', chunk => {
      logFile.write(chunk);
      for (const line of chunk.toString().split('\n')) {
        if (line) tail.push(line);
        if (tail.length > 40) tail.shift();
      }
    });
  }
  const logTail = () => tail.join('\n');

  const baseURL = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exitInfo) {
      logFile.end();
      cleanup(ownDataDir);
      const err = new Error(
        `local server exited during start-up (${JSON.stringify(exitInfo)}); log ${logPath}:\n${logTail()}`);
      err.retryable = /in use|AddrInUse/i.test(logTail());
      throw err;
    }
    try {
      const res = await fetch(`${baseURL}/api/replicache/spaceExists`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({spaceID: 'readinessprobe'}),
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      // 401: up, and asking for a token (AUTH_MODE=jwt).
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      logFile.end();
      cleanup(ownDataDir);
      throw new Error(`local server did not answer within ${READY_TIMEOUT_MS} ms; log ${logPath}:\n${logTail()}`);
    }
    await delay(50);
  }

  let stopped = false;
  let keepData = false;
  return {
    store: STORE,
    baseURL,
    port,
    tableName,
    dataDir,
    logPath,
    logTail,
    pushURL: spaceID => `${baseURL}/api/replicache/push?spaceID=${encodeURIComponent(spaceID)}`,
    pullURL: spaceID => `${baseURL}/api/replicache/pull?spaceID=${encodeURIComponent(spaceID)}`,
    pokeURL: (spaceID, token) => `ws://127.0.0.1:${port}/api/replicache/poke?spaceID=${encodeURIComponent(spaceID)}` +
      (token ? `&token=${encodeURIComponent(token)}` : ''),
    /** True while the process runs. */
    alive: () => exitInfo === null,
    /** Creates a space (as the user of `token`, in jwt mode); resolves to its ID. */
    async createSpace(spaceID, {token, link} = {}) {
      const res = await fetch(`${baseURL}/api/replicache/createSpace`, {
        signal: AbortSignal.timeout(30_000),
        method: 'POST',
        headers: {'content-type': 'application/json', ...(token ? {authorization: `Bearer ${token}`} : {})},
        body: JSON.stringify({...(spaceID ? {spaceID} : {}), ...(link ? {link} : {})}),
      });
      const body = await res.json();
      if (res.status !== 200 || typeof body.spaceID !== 'string') {
        throw new Error(`createSpace answered ${res.status} ${JSON.stringify(body)}`);
      }
      return body.spaceID;
    },
    /** A token for `name` from the development sign-in (AUTH_MODE=jwt). */
    async signIn(name) {
      const res = await fetch(`${baseURL}/api/dev/signIn`, {
        signal: AbortSignal.timeout(30_000),
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({name}),
      });
      const body = await res.json();
      if (res.status !== 200 || typeof body.token !== 'string') {
        throw new Error(`signIn answered ${res.status} ${JSON.stringify(body)}`);
      }
      return body.token;
    },
    /** Stops the server and keeps its data directory (for a restart on it). */
    async stopKeepingData() {
      keepData = true;
      await this.stop();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const diedBeforeStop = exitInfo !== null;
      if (!diedBeforeStop) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      await new Promise(ok => logFile.end(ok));
      if (!keepData) cleanup(ownDataDir);
      if (diedBeforeStop) {
        throw new Error(`local server died during the tests (${JSON.stringify(exitInfo)}); log ${logPath}:\n${logTail()}`);
      }
    },
  };
}

function cleanup(dataDir) {
  if (dataDir) rmSync(dataDir, {recursive: true, force: true});
}
