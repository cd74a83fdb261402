// Test harness: the local server on a free 127.0.0.1 port (temp DATA_DIR, CLIENT_DIR =
// the built client), and headless Chromium from Debian's package through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CLIENT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(CLIENT_ROOT, '..');
export const DIST = path.join(CLIENT_ROOT, 'dist');
export const ARTIFACTS = path.join(CLIENT_ROOT, 'test-artifacts');

export const SERVER_BIN =
  process.env.LOCAL_SERVER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'local-server');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** How long a wait for something that is expected to happen may take before it fails. */
export const WAIT_TIMEOUT_MS = 15_000;

/**
 * Polls `check` (sync or async) until it returns a truthy value, and returns that value.
 * A `check` that throws counts as "not yet" (its last error goes into the failure).
 * `what` (a string, or a function called at failure time so it can show the last state)
 * names the condition in the error thrown after `timeout` ms.
 */
export async function waitFor(check, what, { timeout = WAIT_TIMEOUT_MS, interval = 25 } = {}) {
  const started = Date.now();
  for (;;) {
    let error;
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      error = e;
    }
    if (Date.now() - started >= timeout) {
      const name = typeof what === 'function' ? what() : what;
      const cause = error ? ` (last check threw: ${error.message})` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${name}${cause}`);
    }
    await sleep(interval);
  }
}

/**
 * Waits until `endpoint` answers HTTP (any status), for up to `timeout` ms; throws when
 * it does not, or when `child` (the process serving it, if given) has exited.
 */
export async function waitForHttp(endpoint, { child = undefined, timeout = 20_000 } = {}) {
  const until = Date.now() + timeout;
  while (Date.now() < until) {
    if (child && child.exitCode !== null) break;
    try {
      await fetch(endpoint);
      return endpoint;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing answered at ${endpoint}`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the local server; resolves once it answers HTTP. `stop()` sends SIGTERM (then
 * SIGKILL after 5 s) and removes the data directory.
 */
export async function startServer({ clientDir = DIST, env = {}, logName = 'server' } = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`no local server at ${SERVER_BIN}: run \`cargo build -p local-server\` or set LOCAL_SERVER_BIN`);
  }
  if (!fs.existsSync(path.join(clientDir, 'index.html'))) {
    throw new Error(`no built client in ${clientDir}: run \`npm run build\` in client/`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'counter-data-'));
  const logFile = path.join(ARTIFACTS, `${logName}.log`);
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const out = fs.openSync(logFile, 'w');
    const child = spawn(SERVER_BIN, [], {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        DATA_DIR: dataDir,
        CLIENT_DIR: clientDir,
        ...env,
      },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    let gone = null;
    exited.then((e) => (gone = e));
    const origin = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    let up = false;
    while (!gone && Date.now() < deadline) {
      if (await answers(`${origin}/`)) {
        up = true;
        break;
      }
      await sleep(50);
    }
    if (!up) {
      child.kill('SIGKILL');
      const log = fs.readFileSync(logFile, 'utf8');
      if (tries < 2 && /address already in use|cannot listen/i.test(log)) continue; // lost a port race
      fs.rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`local server did not start (${JSON.stringify(gone)}):\n${log}`);
    }
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    return {
      origin,
      port,
      dataDir,
      logFile,
      async stop() {
        process.removeListener('exit', kill);
        if (!gone) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
}

function answers(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode > 0);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** POST JSON to the API (with `Authorization: Bearer <token>` when given); returns {status, json}. */
export async function api(origin, route, body, query = '', token = undefined) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${origin}/api/replicache/${route}${query}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // leave null
  }
  return { status: res.status, json, text };
}

/**
 * A token from the local server's development sign-in (`AUTH_MODE=jwt`):
 * `{token, user, expiresAt}`.
 */
export async function devToken(origin, name) {
  const res = await fetch(`${origin}/api/dev/signIn`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`dev sign-in answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * The server's count for a space, read with a fresh client group's first pull (as the
 * user of `token` in `AUTH_MODE=jwt`).
 */
export async function serverCount(origin, spaceID, token = undefined) {
  const { status, json } = await api(
    origin,
    'pull',
    {
      pullVersion: 1,
      clientGroupID: `probe${Date.now()}${Math.floor(Math.random() * 1e6)}`,
      profileID: 'probe',
      schemaVersion: '',
      cookie: null,
    },
    `?spaceID=${encodeURIComponent(spaceID)}`,
    token,
  );
  if (status !== 200) throw new Error(`pull answered ${status}`);
  let count;
  for (const op of json.patch) {
    if (op.op === 'clear') count = undefined;
    if (op.key === 'count') count = op.op === 'put' ? op.value : undefined;
  }
  return count ?? 0;
}

/**
 * Waits until the server's count for `spaceID` is at least `atLeast` (the pushes it
 * depends on have landed) and returns the count then, for the caller to assert exactly:
 * a count that overshoots is returned at once, so `assert.equal` still catches it.
 */
export async function settledServerCount(origin, spaceID, atLeast, what, options = {}) {
  const { token, ...waitOptions } = options;
  let seen = 'none yet';
  return waitFor(
    async () => {
      const n = await serverCount(origin, spaceID, token);
      seen = n;
      return n >= atLeast ? { count: n } : null;
    },
    () => `${what}: server count >= ${atLeast} (last seen: ${seen})`,
    waitOptions,
  ).then((r) => r.count);
}

/**
 * Launches Chromium. Playwright gives the browser a fresh temporary user-data directory
 * (and deletes it on close); each `browser.newContext()` is a separate profile, so two
 * contexts are two independent Replicache client groups with their own network state.
 */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/** A page with its console errors and uncaught exceptions collected (in `context`, or a new one). */
export async function newPage(browser, name, context = undefined) {
  context ??= await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`${name}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`${name}: console ${m.text()}`);
  });
  return { context, page };
}

export async function countOf(page) {
  return page.locator('#count').getAttribute('data-count');
}

/** Waits until the page's count is `value`; returns how long that took in ms. */
export async function waitForCount(page, value, timeout = 10_000) {
  const started = Date.now();
  await page.waitForFunction(
    (v) => document.getElementById('count')?.dataset.count === String(v),
    value,
    { timeout, polling: 20 },
  );
  return Date.now() - started;
}

export async function screenshot(page, name, { fullPage = false } = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/**
 * A plain static server for a copy of the built client with its own `config.json`, on
 * another origin than the API: the way a deployed client (S3/CloudFront) talks to the
 * API Gateway URLs. Unknown extension-less paths get index.html.
 */
export async function startStaticServer(config) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'counter-static-'));
  fs.cpSync(DIST, root, { recursive: true });
  fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify(config));
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file = path.join(root, path.normalize(decodeURIComponent(url.pathname)));
    if (!file.startsWith(root)) file = root;
    if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      if (path.extname(url.pathname)) {
        res.writeHead(404).end('not found');
        return;
      }
      file = path.join(root, 'index.html');
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
