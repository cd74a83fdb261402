// A space whose first pull is over the limit, in headless Chromium: the local server on
// DynamoDB (moto) with the answer bucket on moto's S3 answers the page's pull with 303 to
// a presigned URL on another origin; Chromium follows it (a GET, preflighted because of
// X-Replicache-RequestID, allowed by the bucket's CORS rule) and the page shows the data.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REPO_ROOT,
  api,
  freePort,
  launchBrowser,
  newPage,
  screenshot,
  startServer,
  waitForCount,
  waitForHttp,
} from './harness.mjs';

const LIMIT = 100_000;
const ITEMS = 40;
const COUNT = 7;

let moto;
let server;
let browser;

/** The run's moto (DYNAMODB_ENDPOINT), or one of this file's own. */
async function dynamoEndpoint() {
  if (process.env.DYNAMODB_ENDPOINT) return process.env.DYNAMODB_ENDPOINT;
  const port = await freePort();
  const script = path.join(REPO_ROOT, 'functions', 'test-support', 'serial_moto.py');
  moto = spawn('python3', [script, '127.0.0.1', String(port)], { stdio: 'ignore' });
  return waitForHttp(`http://127.0.0.1:${port}`, { child: moto, timeout: 10_000 });
}

before(async () => {
  const endpoint = await dynamoEndpoint();
  const suffix = randomBytes(6).toString('hex');
  server = await startServer({
    logName: 'large-pull-server',
    env: {
      DYNAMODB_ENDPOINT: endpoint,
      TABLE_NAME: `browser-large-${suffix}`,
      ANSWER_BUCKET: `browser-answers-${suffix}`,
      ANSWER_LIMIT_BYTES: String(LIMIT),
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  moto?.kill('SIGTERM');
});

async function push(spaceID, mutations) {
  const { status, text } = await api(
    server.origin,
    'push',
    { pushVersion: 1, clientGroupID: 'writer-group', profileID: 'p', schemaVersion: '', mutations },
    `?spaceID=${spaceID}`,
  );
  assert.equal(status, 200, text);
}

test('the first pull of a space over the limit goes through the redirect and shows the data', async () => {
  const { json } = await api(server.origin, 'createSpace', {});
  const spaceID = json.spaceID;
  let id = 0;
  for (let batch = 0; batch < ITEMS / 20; batch++) {
    await push(
      spaceID,
      Array.from({ length: 20 }, (_, i) => ({
        clientID: 'writer',
        id: ++id,
        name: 'setItem',
        args: { key: `k${batch * 20 + i}`, value: randomBytes(5_000).toString('hex') },
        timestamp: 1,
      })),
    );
  }
  await push(spaceID, [{ clientID: 'writer', id: ++id, name: 'increment', args: COUNT, timestamp: 1 }]);

  const { page } = await newPage(browser, 'large-pull');
  const moved = [];
  const fetched = [];
  page.on('response', (r) => {
    if (r.status() === 303) moved.push(r.headers().location);
  });
  page.on('requestfinished', async (req) => {
    if (!req.url().includes('X-Amz-Signature=')) return;
    const res = await req.response();
    fetched.push({ method: req.method(), headers: await req.allHeaders(), status: res?.status(), origin: new URL(req.url()).origin });
  });
  await page.goto(`${server.origin}/space/${spaceID}?pullInterval=off`);
  await waitForCount(page, COUNT, 20_000);
  await screenshot(page, 'large-pull');

  assert.ok(moved.length >= 1, 'the pull was answered 303');
  assert.ok(fetched.length >= 1, 'the page fetched the presigned URL');
  const get = fetched[0];
  assert.equal(get.method, 'GET', 'a 303 after a POST is followed with a GET');
  assert.equal(get.status, 200);
  assert.notEqual(get.origin, server.origin, 'the stored answer is on another origin');
  // The client's header rides along: a non-safelisted header on a cross-origin GET, so
  // Chromium preflighted it, and the bucket's CORS rule allowed it.
  assert.ok(get.headers['x-replicache-requestid'], JSON.stringify(get.headers));
  assert.deepEqual(page.problems, [], 'console errors or uncaught exceptions');
});
