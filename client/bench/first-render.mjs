// Time to first render of a 10,000-entry space in headless Chromium.
//
//   node bench/first-render.mjs [--runs 5] [--entries 10000] [--batch 500]
//                               [--dynamodb <endpoint> | --dynamodb moto]
//
// Starts the local server (release build) on SQLite and, with --dynamodb, again on
// DynamoDB (an endpoint, or `moto`: a moto of our own, functions/benchmarks/moto_bench.py). Each server gets one
// space filled through its own push endpoint with `setItem` (the first-pull benchmark's
// values: BENCHMARKS.md, `firstpull`) and then one `increment` by the number of entries,
// because the page renders only the count: a count equal to the entries means the pull
// that carried every entry has been applied. Each run opens the space in a fresh browser
// context (a new profile: empty IndexedDB, so a new client's first pull) and times, on
// the page's own clock (performance.now(), 0 = navigation start), when the count appears.
// Prints Markdown tables to stdout; progress goes to stderr.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    entries: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '500' },
    dynamodb: { type: 'string' },
  },
});
const RUNS = positive('runs');
const ENTRIES = positive('entries');
const BATCH = positive('batch');

function positive(name) {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

// The harness reads LOCAL_SERVER_BIN when it is loaded; a benchmark wants the release
// build, so set it before the (dynamic) import.
const here = path.dirname(fileURLToPath(import.meta.url));
process.env.LOCAL_SERVER_BIN ||= path.resolve(here, '..', '..', 'target', 'release', 'local-server');
const { REPO_ROOT, SERVER_BIN, api, freePort, launchBrowser, serverCount, sleep, startServer, waitForHttp } =
  await import('../tests/harness.mjs');

/** sync-core's MAX_BODY_BYTES (functions/sync-core/src/api.rs): a push must stay under it. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;
const RENDER_TIMEOUT_MS = 120_000;
const PERSIST_QUIET_MS = 500;
const PERSIST_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------- cleanup

const cleanups = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.error(`cleanup: ${e.message}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => cleanup().finally(() => process.exit(130)));
}

// ---------------------------------------------------------------- servers

/**
 * A moto of our own, started as client/tests/browser-large-pull.test.mjs starts
 * test-support's serial_moto.py, but through functions/benchmarks/moto_bench.py (the
 * same server, whose transactions do not copy the whole table): with plain moto, filling
 * 10,000 entries takes memory past 20 GB (BENCHMARKS.md, "About moto").
 */
async function startMoto() {
  const port = await freePort();
  const script = path.join(REPO_ROOT, 'functions', 'benchmarks', 'moto_bench.py');
  const child = spawn('python3', [script, '127.0.0.1', String(port)], { stdio: 'ignore' });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill); // even if we die before cleanup runs
  cleanups.push(() => {
    process.removeListener('exit', kill);
    child.kill('SIGTERM');
  });
  return waitForHttp(`http://127.0.0.1:${port}`, { child });
}

async function startStoreServer(store, dynamoEndpoint) {
  const env = {};
  if (dynamoEndpoint) {
    Object.assign(env, {
      DYNAMODB_ENDPOINT: dynamoEndpoint,
      TABLE_NAME: `first-render-${randomBytes(6).toString('hex')}`,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    });
  }
  const server = await startServer({ logName: `first-render-${store}`, env });
  // harness's own exit hook only kills the process; drop the data directory as well.
  const rmData = () => fs.rmSync(server.dataDir, { recursive: true, force: true });
  process.once('exit', rmData);
  let stopped = null;
  const stop = () =>
    (stopped ??= (async () => {
      process.removeListener('exit', rmData);
      await server.stop();
    })());
  cleanups.push(stop);
  return { ...server, stop };
}

// ---------------------------------------------------------------- the space

/** The first-pull benchmark's value for entry `i` (benchmarks::wire::item_value). */
const itemValue = (i) => ({ title: `item number ${i}`, done: i % 2 === 0, n: i });

async function push(origin, spaceID, mutations) {
  const body = {
    pushVersion: 1,
    clientGroupID: 'g-seed',
    profileID: 'bench',
    schemaVersion: '',
    mutations,
  };
  const size = Buffer.byteLength(JSON.stringify(body));
  if (size >= MAX_BODY_BYTES) throw new Error(`a push of ${size} bytes is over the limit: lower --batch`);
  const { status, text } = await api(origin, 'push', body, `?spaceID=${spaceID}`);
  if (status !== 200) throw new Error(`seeding push answered ${status}: ${text}`);
}

/** A new space with ENTRIES items and count = ENTRIES; returns its ID. */
async function fillSpace(origin) {
  const { status, json, text } = await api(origin, 'createSpace', {});
  if (status !== 200) throw new Error(`createSpace answered ${status}: ${text}`);
  const { spaceID } = json;
  const mutation = (id, name, args) => ({ clientID: 'seed', id, name, args, timestamp: id });
  for (let first = 1; first <= ENTRIES; first += BATCH) {
    const last = Math.min(first + BATCH - 1, ENTRIES);
    const batch = [];
    for (let i = first; i <= last; i++) {
      batch.push(mutation(i, 'setItem', { key: `k${String(i).padStart(7, '0')}`, value: itemValue(i) }));
    }
    await push(origin, spaceID, batch);
  }
  await push(origin, spaceID, [mutation(ENTRIES + 1, 'increment', ENTRIES)]);
  const count = await serverCount(origin, spaceID);
  if (count !== ENTRIES) throw new Error(`the server's count is ${count}, not ${ENTRIES}`);
  return spaceID;
}

// ---------------------------------------------------------------- one page load

/**
 * Runs in the page before its scripts: notes when #count first shows `target` (a
 * MutationObserver, so no polling delay) and when the frame after that has been painted
 * (a task posted from requestAnimationFrame runs after the frame's paint). Also notes
 * each read-write IndexedDB transaction's start and end, to see whether Replicache's
 * write of the pulled data to IndexedDB comes before the render or after it.
 */
function watchCount(target) {
  const mark = { shown: null, painted: null, writes: [] };
  window.__firstRender = mark;
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (stores, mode, ...rest) {
    const tx = transaction.call(this, stores, mode, ...rest);
    if (mode === 'readwrite') {
      const write = { start: performance.now(), end: null };
      mark.writes.push(write);
      const done = () => (write.end = performance.now());
      tx.addEventListener('complete', done);
      tx.addEventListener('abort', done);
    }
    return tx;
  };
  const observer = new MutationObserver(() => {
    if (mark.shown !== null || document.getElementById('count')?.dataset.count !== target) return;
    mark.shown = performance.now();
    observer.disconnect();
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => (mark.painted = performance.now());
      channel.port2.postMessage(null);
    });
  });
  observer.observe(document, { subtree: true, attributes: true, attributeFilter: ['data-count'] });
}

const isPull = (url) => new URL(url).pathname.endsWith('/api/replicache/pull');

async function measureOnce(browser, origin, spaceID) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  try {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`uncaught ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console ${m.text()}`));
    // Every pull response, in order, as Playwright sees it (status, encoding, wire size).
    let pullsSent = 0;
    const pullResponses = [];
    page.on('request', (r) => isPull(r.url()) && pullsSent++);
    page.on('requestfinished', async (r) => {
      if (!isPull(r.url())) return;
      const res = await r.response();
      const sizes = await r.sizes();
      pullResponses.push({
        status: res?.status(),
        encoding: res?.headers()['content-encoding'] ?? 'identity',
        bodyBytes: sizes.responseBodySize,
      });
    });
    await page.addInitScript(watchCount, String(ENTRIES));

    await page.goto(`${origin}/space/${spaceID}`);
    await page.waitForFunction(() => window.__firstRender.painted !== null, undefined, {
      timeout: RENDER_TIMEOUT_MS,
      polling: 50, // only when we learn of it: the timestamps come from the page
    });
    // Let pulls already under way finish, so that each has its Resource Timing entry.
    for (let i = 0; i < 250 && pullResponses.length < pullsSent; i++) await sleep(20);
    // Replicache applies the pulled data in memory and writes it to IndexedDB afterwards
    // (its persist): wait for the writes begun after the render to be done and
    // quiet for PERSIST_QUIET_MS. Not part of the time to first render.
    const persisted = await page
      .waitForFunction(
        (quiet) => {
          const m = window.__firstRender;
          const after = m.writes.filter((w) => w.start >= m.shown);
          if (!after.length || after.some((w) => w.end === null)) return false;
          const end = Math.max(...after.map((w) => w.end));
          return performance.now() - end >= quiet && { start: after[0].start, end, transactions: after.length };
        },
        PERSIST_QUIET_MS,
        { timeout: PERSIST_TIMEOUT_MS, polling: 100 },
      )
      .then((h) => h.jsonValue())
      .catch(() => ({ start: NaN, end: NaN, transactions: 0 })); // none seen: shown as NaN
    // The page's timeline: performance.now() counts from navigation start, and Resource
    // Timing entries are on the same clock.
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const requests = (route) =>
        performance
          .getEntriesByType('resource')
          .filter((e) => new URL(e.name).pathname.endsWith(`/api/replicache/${route}`))
          .map((e) => ({
            start: e.startTime,
            responseStart: e.responseStart,
            end: e.responseEnd,
            encoded: e.encodedBodySize,
            decoded: e.decodedBodySize,
          }));
      return {
        ...window.__firstRender,
        domContentLoaded: nav.domContentLoadedEventEnd,
        spaceExists: requests('spaceExists'),
        pulls: requests('pull'),
      };
    });
    if (problems.length) throw new Error(`the page reported problems: ${problems.join('; ')}`);
    // The pull that carried the data: the last one answered before the count showed.
    const answered = t.pulls.filter((p) => p.end <= t.shown);
    const pull = answered.at(-1);
    if (!pull) throw new Error('no pull was answered before the count showed');
    const response = pullResponses[answered.length - 1];
    if (response?.status !== 200) throw new Error(`the data pull answered ${response?.status}`);
    return {
      painted: t.painted,
      shown: t.shown,
      domContentLoaded: t.domContentLoaded,
      spaceExistsEnd: t.spaceExists[0]?.end ?? NaN,
      pullStart: pull.start,
      pullResponseStart: pull.responseStart,
      pullEnd: pull.end,
      pullsBefore: t.pulls.filter((p) => p.start <= t.shown).length,
      pullsAnswered: answered.length,
      wireBytes: response.bodyBytes,
      decodedBytes: pull.decoded,
      encoding: response.encoding,
      // Read-write IndexedDB transactions begun between the data pull's answer and the
      // render: 0 means the data reached the screen before any of it reached IndexedDB.
      writesBeforeRender: t.writes.filter((w) => w.start >= pull.end && w.start < t.shown).length,
      persistStart: persisted.start,
      persistEnd: persisted.end,
      persistTransactions: persisted.transactions,
    };
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------- report

/** The median of the finite values (a step not seen in a run is NaN there). */
function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const ms = (x) => (!Number.isFinite(x) ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1));
const loadAverage = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const distinct = (xs) => [...new Set(xs)].join(', ');

function machine() {
  const cpus = os.cpus();
  const cores = os.availableParallelism?.() ?? cpus.length;
  const gib = Math.round(os.totalmem() / 2 ** 30);
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cores} cores, ${gib} GiB`;
}

function report({ results, loadStart, loadEnd, browserVersion }) {
  const lines = [];
  const dyn = args.dynamodb ? ` --dynamodb ${args.dynamodb}` : '';
  lines.push(`Command: \`node client/bench/first-render.mjs --runs ${RUNS} --entries ${ENTRIES} --batch ${BATCH}${dyn}\``);
  lines.push('');
  lines.push(
    `Machine: ${machine()}; load average at start ${loadStart}, at end ${loadEnd}. ` +
      `Headless Chromium ${browserVersion}; \`${path.relative(REPO_ROOT, SERVER_BIN)}\` serving the built client and the API on one origin. ` +
      `A space of ${ENTRIES} entries (setItem, ~90-byte JSON values) and its count; ${RUNS} page loads per store, ` +
      'each in a fresh browser context (empty IndexedDB: a new client group and its first pull). ' +
      'Times are the page\'s performance.now(), from navigation start.',
  );
  lines.push('');
  lines.push('| store | first render, median (ms) | min | max | pulls answered before it (sent) | data pull: bytes on the wire | bytes decoded |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const { store, runs } of results) {
    const painted = runs.map((r) => r.painted);
    lines.push(
      `| ${store} | ${ms(median(painted))} | ${ms(Math.min(...painted))} | ${ms(Math.max(...painted))} | ` +
        `${distinct(runs.map((r) => `${r.pullsAnswered} (${r.pullsBefore})`))} | ` +
        `${distinct(runs.map((r) => `${r.wireBytes} (${r.encoding})`))} | ${distinct(runs.map((r) => r.decodedBytes))} |`,
    );
  }
  lines.push('');
  lines.push(
    'Where the time goes: medians of each moment, in ms since navigation start; in brackets, the median ' +
      'of the step from the previous column (Resource Timing of the data pull: its answer\'s first and last byte).',
  );
  lines.push('');
  lines.push(
    '| store | DOMContentLoaded | spaceExists answered | data pull sent | first byte | last byte | count in the DOM | painted | ' +
      'then: IndexedDB write starts | ends |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { store, runs } of results) {
    const m = (f) => ms(median(runs.map(f)));
    lines.push(
      `| ${store} | ${m((r) => r.domContentLoaded)} | ` +
        `${m((r) => r.spaceExistsEnd)} (+${m((r) => r.spaceExistsEnd - r.domContentLoaded)}) | ` +
        `${m((r) => r.pullStart)} (+${m((r) => r.pullStart - r.spaceExistsEnd)}) | ` +
        `${m((r) => r.pullResponseStart)} (+${m((r) => r.pullResponseStart - r.pullStart)}) | ` +
        `${m((r) => r.pullEnd)} (+${m((r) => r.pullEnd - r.pullResponseStart)}) | ` +
        `${m((r) => r.shown)} (+${m((r) => r.shown - r.pullEnd)}) | ` +
        `${m((r) => r.painted)} (+${m((r) => r.painted - r.shown)}) | ` +
        `${m((r) => r.persistStart)} (+${m((r) => r.persistStart - r.painted)}) | ` +
        `${m((r) => r.persistEnd)} (+${m((r) => r.persistEnd - r.persistStart)}) |`,
    );
  }
  lines.push('');
  for (const { store, runs } of results) {
    const before = distinct(runs.map((r) => r.writesBeforeRender));
    const txs = distinct(runs.map((r) => r.persistTransactions));
    lines.push(
      `${store}: read-write IndexedDB transactions begun between the data pull's answer and the count in the DOM: ${before}; ` +
        `after it (Replicache's write of the pulled data): ${txs}.`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
  const loadStart = loadAverage();
  const stores = [{ store: 'SQLite', endpoint: null }];
  if (args.dynamodb) {
    const endpoint = args.dynamodb === 'moto' ? await startMoto() : args.dynamodb;
    stores.push({ store: args.dynamodb === 'moto' ? 'DynamoDB (moto)' : `DynamoDB (${endpoint})`, endpoint });
  }
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const results = [];
  for (const { store, endpoint } of stores) {
    const server = await startStoreServer(store.split(' ')[0].toLowerCase(), endpoint);
    const started = Date.now();
    const spaceID = await fillSpace(server.origin);
    console.error(`${store}: filled space ${spaceID} with ${ENTRIES} entries in ${Date.now() - started} ms`);
    const runs = [];
    for (let i = 1; i <= RUNS; i++) {
      const r = await measureOnce(browser, server.origin, spaceID);
      console.error(
        `${store} run ${i}: first render ${ms(r.painted)} ms (pull sent ${ms(r.pullStart)}, ` +
          `answered ${ms(r.pullEnd)}, count shown ${ms(r.shown)}; ${r.pullsAnswered} pull(s) answered ` +
          `and ${r.pullsBefore} sent before, ${r.writesBeforeRender} IndexedDB writes between pull and render, ` +
          `${r.wireBytes} bytes on the wire, ${r.decodedBytes} decoded)`,
      );
      runs.push(r);
    }
    results.push({ store, runs });
    await server.stop(); // idle, but no reason to keep it beside the next store's runs
  }
  const loadEnd = loadAverage();
  console.log(report({ results, loadStart, loadEnd, browserVersion: browser.version() }));
}

try {
  await main();
} catch (e) {
  process.exitCode = 1;
  console.error(e.stack ?? e.message);
} finally {
  await cleanup();
}
