// Browser tests with sign-in: the built client and the local server in AUTH_MODE=jwt
// (development sign-in), in headless Chromium. Each browser context is a separate
// profile, i.e. a separate person's browser; one test puts two users in two tabs of one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  api,
  countOf,
  devToken,
  launchBrowser,
  newPage,
  screenshot,
  serverCount,
  settledServerCount,
  startServer,
  startStaticServer,
  waitFor,
  waitForCount,
} from './harness.mjs';

const SPACE_URL = /\/space\/([A-Za-z0-9_-]{22})(\?.*)?$/;
const NO_ACCESS = "You don't have access to this space, or it does not exist.";

let server;
let browser;

before(async () => {
  server = await startServer({ env: { AUTH_MODE: 'jwt' }, logName: 'server-auth' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * What the browser reports on its own when a request is refused on purpose (401 before
 * signing in, 404 for a stranger) and Replicache's log line for a refused pull or push.
 */
const EXPECTED_REFUSALS =
  /status of 40[134]|Got a non 200 response doing (pull|push): 40[134]|WebSocket connection to .* failed/;

function noProblems(...pages) {
  const problems = pages.flatMap((p) => p.problems).filter((p) => !EXPECTED_REFUSALS.test(p));
  assert.deepEqual(problems, [], 'console errors or uncaught exceptions');
}

/** Fills in the development sign-in form, which must be showing. */
async function signIn(page, name) {
  await page.waitForSelector('#signin:not([hidden]) #signin-dev:not([hidden])', { timeout: 10_000 });
  await page.fill('#signin-name', name);
  await page.click('#signin-submit');
}

/** Waits until the counter shows a count, its socket is up and sync works. */
async function counterReady(page) {
  await page.waitForSelector('#count[data-count]:not([data-count=""])', { timeout: 10_000 });
  await page.waitForSelector('#socket-state[data-state="open"]', { timeout: 10_000 });
  await page.waitForSelector('#status[data-online="true"]', { timeout: 10_000 });
}

async function shareState(page) {
  return page.evaluate(() => {
    const box = document.getElementById('share');
    return {
      visible: !box.hidden,
      state: box.dataset.state,
      role: box.dataset.role,
      owner: box.dataset.owner,
      link: box.dataset.link,
      people: [...document.querySelectorAll('#people li')].map((li) => `${li.dataset.user}:${li.dataset.role}`),
      toggleChecked: document.getElementById('link-open').checked,
      toggleDisabled: document.getElementById('link-open').disabled,
      canAdd: !document.getElementById('add-member').hidden,
      removable: [...document.querySelectorAll('#people .remove')].map((b) => b.closest('li').dataset.user),
    };
  });
}

test('two users share a space, a third is refused until the link is opened to anyone', async (t) => {
  const alice = await newPage(browser, 'alice');
  const bob = await newPage(browser, 'bob');
  const mallory = await newPage(browser, 'mallory');
  t.after(() => Promise.all([alice, bob, mallory].map((p) => p.context.close())));

  // Alice opens / : createSpace answers 401, so the page asks who she is.
  await alice.page.goto(`${server.origin}/?pullInterval=off`);
  await alice.page.waitForSelector('#signin:not([hidden])', { timeout: 10_000 });
  assert.equal(await alice.page.isVisible('#layout'), false, 'no counter before sign-in');
  await screenshot(alice.page, 'auth-sign-in');
  await signIn(alice.page, 'alice');
  await alice.page.waitForURL(SPACE_URL, { timeout: 10_000 });
  const spaceID = alice.page.url().match(SPACE_URL)[1];
  await counterReady(alice.page);
  assert.equal(await alice.page.textContent('#user-label'), 'alice');
  await alice.page.waitForSelector('#share[data-state="ready"]');
  assert.deepEqual(await shareState(alice.page), {
    visible: true, state: 'ready', role: 'owner', owner: 'alice', link: 'members',
    people: ['alice:owner'], toggleChecked: false, toggleDisabled: false, canAdd: true, removable: [],
  });
  // The Replicache name (the IndexedDB database) is per user and space.
  const dbs = await alice.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  assert.ok(dbs.some((n) => n.includes(`counter-alice@${spaceID}`)), `databases: ${dbs}`);

  // Alice shares with bob; his list shows both of them, without the owner's controls.
  await alice.page.fill('#member-name', 'bob');
  await alice.page.click('#member-add');
  await alice.page.waitForSelector('#people li[data-user="bob"][data-role="member"]');
  assert.equal(await alice.page.inputValue('#member-name'), '', 'the field is cleared');
  assert.deepEqual((await shareState(alice.page)).removable, ['bob']);

  await bob.page.goto(`${server.origin}/space/${spaceID}?pullInterval=off`);
  await signIn(bob.page, 'bob');
  await counterReady(bob.page);
  await bob.page.waitForSelector('#share[data-state="ready"]');
  const bobsView = await shareState(bob.page);
  assert.deepEqual(bobsView.people, ['alice:owner', 'bob:member']);
  assert.equal(bobsView.role, 'member');
  assert.equal(bobsView.toggleDisabled, true, 'only the owner may open the link');
  assert.equal(bobsView.canAdd, false);
  assert.deepEqual(bobsView.removable, []);

  // Both tabs sync, by poke, in both directions.
  const timings = [];
  for (const [from, to, n] of [[alice, bob, 1], [bob, alice, 2], [alice, bob, 3]]) {
    const started = Date.now();
    await from.page.click('#increment');
    await waitForCount(from.page, n, 2000);
    await waitForCount(to.page, n, 5000);
    timings.push(Date.now() - started);
  }
  const aliceToken = (await devToken(server.origin, 'alice')).token;
  assert.equal(await settledServerCount(server.origin, spaceID, 3, 'three pushes', { token: aliceToken }), 3);
  await alice.page.waitForTimeout(300); // let the bump animation finish
  await screenshot(alice.page, 'auth-alice-owner', { fullPage: true });
  await screenshot(bob.page, 'auth-bob-member', { fullPage: true });

  // Mallory signs in and is refused: a clear message, no counter, no socket.
  const malloryURL = `${server.origin}/space/${spaceID}?pullInterval=1000`;
  await mallory.page.goto(malloryURL);
  await signIn(mallory.page, 'mallory');
  await mallory.page.waitForSelector('#no-access:not([hidden])', { timeout: 10_000 });
  assert.equal((await mallory.page.textContent('#no-access-text')).trim(), NO_ACCESS);
  assert.equal(await mallory.page.textContent('#no-access-user'), 'mallory');
  assert.equal(await mallory.page.isVisible('#layout'), false);
  assert.equal(await mallory.page.isVisible('#count'), false);
  await screenshot(mallory.page, 'auth-mallory-refused');
  // What the page was told is what the API tells her.
  const malloryToken = (await devToken(server.origin, 'mallory')).token;
  assert.deepEqual((await api(server.origin, 'spaceExists', { spaceID }, '', malloryToken)).json, { spaceExists: false });
  await assert.rejects(serverCount(server.origin, spaceID, malloryToken), /pull answered 404/);
  // Checking again changes nothing while the space is members-only.
  await mallory.page.click('#no-access-retry');
  await mallory.page.waitForSelector('#no-access:not([hidden])', { timeout: 10_000 });

  // Alice opens the space to anyone with the link; mallory checks again and can sync.
  await alice.page.check('#link-open');
  await alice.page.waitForSelector('#share[data-link="open"][data-busy="false"]');
  assert.equal((await api(server.origin, 'spaceAccess', {}, `?spaceID=${spaceID}`, aliceToken)).json.link, 'open');
  await mallory.page.click('#no-access-retry');
  await counterReady(mallory.page);
  await waitForCount(mallory.page, 3);
  await mallory.page.waitForSelector('#share[data-state="ready"]');
  assert.equal((await shareState(mallory.page)).role, 'link');
  await mallory.page.click('#increment');
  await waitForCount(alice.page, 4, 5000);
  await waitForCount(bob.page, 4, 5000);
  await mallory.page.waitForTimeout(300);
  await screenshot(mallory.page, 'auth-mallory-by-link', { fullPage: true });

  // Alice closes the link again: mallory's next pull is refused and her page says so.
  await alice.page.uncheck('#link-open');
  await alice.page.waitForSelector('#share[data-link="members"][data-busy="false"]');
  await mallory.page.waitForSelector('#no-access:not([hidden])', { timeout: 10_000 });
  assert.equal(await mallory.page.getAttribute('#no-access', 'data-reason'), 'sync');
  // ...while the members carry on.
  await bob.page.click('#increment');
  await waitForCount(alice.page, 5, 5000);
  assert.equal(await settledServerCount(server.origin, spaceID, 5, 'all pushes', { token: aliceToken }), 5);

  // Alice removes bob: gone from the list, and his token no longer reads the space.
  await alice.page.click('#people li[data-user="bob"] .remove');
  await alice.page.waitForSelector('#people li[data-user="bob"]', { state: 'detached' });
  const bobToken = (await devToken(server.origin, 'bob')).token;
  await assert.rejects(serverCount(server.origin, spaceID, bobToken), /pull answered 404/);
  noProblems(alice.page, bob.page, mallory.page);
  t.diagnostic(`click to other tab in ms: ${JSON.stringify(timings)}`);
});

test('two users in two tabs of one browser profile each keep their own client group', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  t.after(() => context.close());
  const carol = await newPage(browser, 'carol', context);
  await carol.page.goto(`${server.origin}/?pullInterval=off`);
  await signIn(carol.page, 'carol');
  await carol.page.waitForURL(SPACE_URL, { timeout: 10_000 });
  const spaceID = carol.page.url().match(SPACE_URL)[1];
  await counterReady(carol.page);
  await carol.page.fill('#member-name', 'dave');
  await carol.page.click('#member-add');
  await carol.page.waitForSelector('#people li[data-user="dave"]');

  // A second tab of the same profile: its own sessionStorage, so its own sign-in.
  const dave = await newPage(browser, 'dave', context);
  await dave.page.goto(`${server.origin}/space/${spaceID}?pullInterval=off`);
  await signIn(dave.page, 'dave');
  await counterReady(dave.page);
  assert.equal(await carol.page.textContent('#user-label'), 'carol', 'carol is still carol');
  assert.equal(await dave.page.textContent('#user-label'), 'dave');

  await carol.page.click('#increment');
  await waitForCount(dave.page, 1, 5000);
  await dave.page.click('#increment');
  await waitForCount(carol.page, 2, 5000);
  // Neither tab was refused: different Replicache names, different client groups.
  const refused = (p) => p.locator('#log li[data-kind="error"]').count();
  assert.equal(await refused(carol.page), 0);
  assert.equal(await refused(dave.page), 0);
  const dbs = await carol.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  assert.ok(dbs.some((n) => n.includes(`counter-carol@${spaceID}`)), `databases: ${dbs}`);
  assert.ok(dbs.some((n) => n.includes(`counter-dave@${spaceID}`)), `databases: ${dbs}`);
  noProblems(carol.page, dave.page);
});

test('sign out, and sign in as someone else from the refusal', async (t) => {
  const p = await newPage(browser, 'erin');
  t.after(() => p.context.close());
  const { token } = await devToken(server.origin, 'frank');
  const { json } = await api(server.origin, 'createSpace', {}, '', token);
  await p.page.goto(`${server.origin}/space/${json.spaceID}?pullInterval=off`);
  await signIn(p.page, 'erin');
  await p.page.waitForSelector('#no-access:not([hidden])', { timeout: 10_000 });
  await p.page.click('#no-access-switch');
  await signIn(p.page, 'frank');
  await counterReady(p.page);
  assert.equal(await p.page.textContent('#user-label'), 'frank');
  assert.equal((await shareState(p.page)).role, 'owner');
  await p.page.click('#sign-out');
  await p.page.waitForSelector('#signin:not([hidden])', { timeout: 10_000 });
  assert.equal(await p.page.isVisible('#user'), false);
  assert.equal(await p.page.evaluate(() => sessionStorage.getItem('counter-auth')), null);
  noProblems(p.page);
});

test("a refused createSpace shows the server's message (QuotaExceeded)", async (t) => {
  // The per-user limit is 1,000 spaces: answer for the server here rather than make them.
  const p = await newPage(browser, 'quota');
  t.after(() => p.context.close());
  const message = 'you own 1000 spaces, the most allowed';
  await p.page.route('**/api/replicache/createSpace', async (route) => {
    if (!route.request().headers().authorization) return route.continue(); // the 401 first
    return route.fulfill({
      status: 403,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'QuotaExceeded', message }),
    });
  });
  await p.page.goto(`${server.origin}/`);
  await signIn(p.page, 'quinn');
  await p.page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
  assert.equal(await p.page.textContent('#error-text'), `Could not create a space: ${message}`);
  assert.equal(await p.page.textContent('#status-label'), 'Not allowed');
  assert.ok(!SPACE_URL.test(p.page.url()), 'stays on /');
  await screenshot(p.page, 'auth-quota');
  noProblems(p.page);
});

test('a client on another origin signs in first when config.json says so (CORS)', async (t) => {
  const statics = await startStaticServer({
    httpApiUrl: server.origin,
    webSocketUrl: `ws://127.0.0.1:${server.port}/api/replicache/poke`,
    auth: { dev: true },
  });
  t.after(() => statics.stop());
  const p = await newPage(browser, 'hosted');
  t.after(() => p.context.close());
  const apiCalls = [];
  p.page.on('request', (r) => r.url().includes('/api/replicache/') && apiCalls.push(r.url()));
  await p.page.goto(`${statics.origin}/?pullInterval=off`);
  await p.page.waitForSelector('#signin:not([hidden])', { timeout: 10_000 });
  assert.deepEqual(apiCalls, [], 'no API call (and so no 401) before signing in');
  await signIn(p.page, 'grace');
  await p.page.waitForURL(SPACE_URL, { timeout: 10_000 });
  assert.ok(p.page.url().startsWith(statics.origin));
  await counterReady(p.page);
  await p.page.click('#increment');
  const spaceID = p.page.url().match(SPACE_URL)[1];
  const { token } = await devToken(server.origin, 'grace');
  assert.equal(await settledServerCount(server.origin, spaceID, 1, 'the push', { token }), 1);
  noProblems(p.page);
});

test('an expired token: getAuth signs in again, sync resumes, nothing lost or doubled', async (t) => {
  // A server whose development tokens live 3 s.
  const short = await startServer({ env: { AUTH_MODE: 'jwt', DEV_TOKEN_TTL_SECS: '3' }, logName: 'server-auth-ttl' });
  t.after(() => short.stop());
  const a = await newPage(browser, 'henry');
  const b = await newPage(browser, 'iris');
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  const seen = { signIns: 0, refused: [] };
  a.page.on('request', (r) => r.url().endsWith('/api/dev/signIn') && seen.signIns++);
  a.page.on('response', (r) => {
    if (r.status() === 401 && /\/(push|pull)\?/.test(r.url())) seen.refused.push(new URL(r.url()).pathname);
  });

  await a.page.goto(`${short.origin}/?pullInterval=off`);
  await signIn(a.page, 'henry');
  await a.page.waitForURL(SPACE_URL, { timeout: 10_000 });
  const spaceID = a.page.url().match(SPACE_URL)[1];
  await counterReady(a.page);
  await a.page.fill('#member-name', 'iris');
  await a.page.click('#member-add');
  await a.page.waitForSelector('#people li[data-user="iris"]');
  await b.page.goto(`${short.origin}/space/${spaceID}?pullInterval=off`);
  await signIn(b.page, 'iris');
  await counterReady(b.page);
  const signInsBefore = seen.signIns;

  // Let henry's token expire (his page holds it; nothing renews it on its own). `exp` is
  // in whole seconds and a token is good through its `exp` second.
  const expiresAt = await a.page.evaluate(() => JSON.parse(sessionStorage.getItem('counter-auth')).expiresAt);
  await waitFor(() => Date.now() > expiresAt + 1200, 'the token to expire', { timeout: 10_000 });

  for (let i = 1; i <= 3; i++) await a.page.click('#increment');
  await waitForCount(a.page, 3, 1000);
  // The push is refused with 401, Replicache calls getAuth, the page signs in again and
  // the push is retried; iris (whose token has expired too) pulls after the poke the same way.
  await waitForCount(b.page, 3, 10_000);
  const { token } = await devToken(short.origin, 'henry');
  assert.equal(await settledServerCount(short.origin, spaceID, 3, 'the retried push', { token }), 3);
  const logOf = (pg) => pg.$$eval('#log li', (lis) => lis.map((li) => li.textContent).reverse().join('\n'));
  assert.ok(seen.refused.length >= 1, `a push or pull was refused with 401; log:\n${await logOf(a.page)}`);
  assert.ok(seen.signIns > signInsBefore, 'getAuth signed in again');
  assert.ok((await a.page.locator('#log li[data-kind="auth"]').count()) >= 2, 'the log shows the renewal');
  const renewed = await a.page.evaluate(() => JSON.parse(sessionStorage.getItem('counter-auth')).expiresAt);
  assert.ok(renewed > expiresAt, 'a new token is kept');

  // Nothing doubled: a few more clicks on both sides, and the total is exact.
  await b.page.click('#increment');
  await waitForCount(a.page, 4, 10_000);
  assert.equal(await settledServerCount(short.origin, spaceID, 4, 'all pushes', { token }), 4);
  assert.equal(await countOf(a.page), '4');
  assert.equal(await countOf(b.page), '4');
  await a.page.waitForTimeout(300);
  await screenshot(a.page, 'auth-token-renewed', { fullPage: true });
  noProblems(a.page, b.page);
  t.diagnostic(`${seen.refused.length} refused (${seen.refused.join(', ')}); ${seen.signIns - signInsBefore} sign-ins by getAuth`);
});
