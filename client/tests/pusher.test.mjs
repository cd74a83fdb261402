// Unit tests of the splitting pusher against a fake `fetch` that behaves like the server:
// it refuses bodies over its limit with a 413 (`maxBytes` when `announce`) and records
// every request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MARGIN_BYTES, makeSplittingPusher, SERVER_MAX_BYTES } from '../src/pusher.js';

const URL = 'http://127.0.0.1:1/api/replicache/push?spaceID=s1';

function mutation(id, valueBytes = 100) {
  return {
    id,
    name: 'setItem',
    args: { key: `k${id}`, value: 'x'.repeat(valueBytes) },
    timestamp: 1000 + id,
    clientID: 'c1',
  };
}

function pushBody(mutations) {
  return { pushVersion: 1, schemaVersion: '1', profileID: 'p1', clientGroupID: 'g1', mutations };
}

const json = (status, value) =>
  new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });

/**
 * A fake server: bodies up to `limit` bytes are answered by `answer` (default `{}`),
 * larger ones 413 (with `maxBytes` when `announce`). `requests` holds what was sent.
 */
function fakeServer({ limit = Infinity, announce = true, answer } = {}) {
  const server = {
    requests: [],
    fetch: async (url, init) => {
      const bytes = Buffer.byteLength(init.body);
      const body = JSON.parse(init.body);
      server.requests.push({ url, init, bytes, body, ids: body.mutations.map((m) => m.id) });
      if (bytes > limit) {
        const refusal = { error: 'PayloadTooLarge', message: `over ${limit}` };
        if (announce) refusal.maxBytes = limit;
        return json(413, refusal);
      }
      return answer ? answer(server.requests.length - 1, body) : json(200, {});
    },
  };
  return server;
}

const ids = (n, from = 1) => Array.from({ length: n }, (_, i) => from + i);

test('the default limit is the server limit less the margin', () => {
  const pusher = makeSplittingPusher({ url: URL });
  assert.equal(pusher.maxBytes, SERVER_MAX_BYTES - DEFAULT_MARGIN_BYTES);
  assert.equal(makeSplittingPusher({ url: URL, marginBytes: 1000 }).maxBytes, SERVER_MAX_BYTES - 1000);
  assert.equal(makeSplittingPusher({ url: URL, maxBytes: 5000 }).maxBytes, 5000);
  assert.throws(() => makeSplittingPusher({ url: URL, maxBytes: 0 }), RangeError);
});

test('a small push goes as one request with the default pusher headers and body', async () => {
  const server = fakeServer();
  const pusher = makeSplittingPusher({ url: URL, auth: 'Bearer t1', fetch: server.fetch });
  const body = pushBody(ids(3).map((id) => mutation(id)));
  const result = await pusher(body, 'c1-abc-7');
  assert.deepEqual(result, { httpRequestInfo: { httpStatusCode: 200, errorMessage: '' } });
  assert.equal(server.requests.length, 1);
  const [req] = server.requests;
  assert.equal(req.url, URL);
  assert.equal(req.init.method, 'POST');
  assert.deepEqual(req.init.headers, {
    'Content-type': 'application/json',
    'X-Replicache-RequestID': 'c1-abc-7',
    Authorization: 'Bearer t1',
  });
  // Byte for byte what Replicache's default pusher sends.
  assert.equal(req.init.body, JSON.stringify(body));
});

test('splits in order into consecutive requests each within the limit', async () => {
  const server = fakeServer();
  const limit = 2000;
  const pusher = makeSplittingPusher({ url: URL, maxBytes: limit, fetch: server.fetch });
  const body = pushBody(ids(40).map((id) => mutation(id, 100 + id * 7)));
  const whole = Buffer.byteLength(JSON.stringify(body));
  const result = await pusher(body, 'r1');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  assert.ok(server.requests.length > 1, `${whole} bytes in ${server.requests.length} request(s)`);
  // Every mutation once, in order; every request within the limit and otherwise the body.
  assert.deepEqual(server.requests.flatMap((r) => r.ids), ids(40));
  for (const r of server.requests) {
    assert.ok(r.bytes <= limit, `${r.bytes} > ${limit}`);
    assert.deepEqual({ ...r.body, mutations: [] }, { ...body, mutations: [] });
    assert.equal(r.init.headers['X-Replicache-RequestID'], 'r1');
  }
  // Chunks are filled: no two neighbours would have fitted in one request.
  for (let i = 1; i < server.requests.length; i++) {
    const joined = pushBody([...server.requests[i - 1].body.mutations, server.requests[i].body.mutations[0]]);
    assert.ok(Buffer.byteLength(JSON.stringify(joined)) > limit);
  }
  // The caller's body is left as it was.
  assert.equal(body.mutations.length, 40);
});

test('by default requests stay the margin below the server limit', async () => {
  const server = fakeServer({ limit: SERVER_MAX_BYTES });
  const pusher = makeSplittingPusher({ url: URL, fetch: server.fetch });
  // 14 MB of mutations of 100 KB each.
  const result = await pusher(pushBody(ids(140).map((id) => mutation(id, 100_000))), 'r');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  const limit = SERVER_MAX_BYTES - DEFAULT_MARGIN_BYTES;
  assert.equal(limit, 4 * 1024 * 1024);
  assert.ok(server.requests.every((r) => r.bytes <= limit), 'none refused');
  // Filled up to the limit: all but the last lack less than one mutation.
  for (const r of server.requests.slice(0, -1)) assert.ok(r.bytes > limit - 100_200, `${r.bytes}`);
  assert.equal(server.requests.length, Math.ceil(140 / server.requests[0].ids.length));
  assert.deepEqual(server.requests.flatMap((r) => r.ids), ids(140));
});

test('stops at the first failed request and returns its answer', async () => {
  const server = fakeServer({
    answer: (i) => (i === 2 ? json(503, { error: 'Contended', message: 'the space is busy; retry' }) : json(200, {})),
  });
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 1500, fetch: server.fetch });
  const result = await pusher(pushBody(ids(30).map((id) => mutation(id))), 'r');
  assert.equal(server.requests.length, 3, 'nothing after the failure');
  assert.deepEqual(result, {
    httpRequestInfo: {
      httpStatusCode: 503,
      errorMessage: JSON.stringify({ error: 'Contended', message: 'the space is busy; retry' }),
    },
  });
});

test('a network failure propagates after the chunks already sent', async () => {
  let calls = 0;
  const pusher = makeSplittingPusher({
    url: URL,
    maxBytes: 1500,
    fetch: async () => {
      calls++;
      if (calls === 2) throw new TypeError('fetch failed');
      return json(200, {});
    },
  });
  await assert.rejects(pusher(pushBody(ids(30).map((id) => mutation(id))), 'r'), /fetch failed/);
  assert.equal(calls, 2);
});

test('a protocol answer (ClientStateNotFound first, VersionNotSupported) stops and is returned', async () => {
  for (const [at, answerBody] of [
    [0, { error: 'ClientStateNotFound' }],
    [1, { error: 'VersionNotSupported', versionType: 'push' }],
  ]) {
    const server = fakeServer({ answer: (i) => json(200, i === at ? answerBody : {}) });
    const pusher = makeSplittingPusher({ url: URL, maxBytes: 1500, fetch: server.fetch });
    const result = await pusher(pushBody(ids(30).map((id) => mutation(id))), 'r');
    assert.equal(server.requests.length, at + 1);
    assert.deepEqual(result, {
      httpRequestInfo: { httpStatusCode: 200, errorMessage: '' },
      response: answerBody,
    });
  }
});

/**
 * A server that keeps the client's last mutation ID like the real one: duplicates are
 * skipped, a gap is answered ClientStateNotFound, and at most `perRequest` mutations are
 * processed per request (it stops early, as at its deadline, and still answers 200).
 */
function lmidServer(perRequest) {
  const server = fakeServer({
    answer: (_, body) => {
      let processed = 0;
      for (const m of body.mutations) {
        if (m.id <= server.lmid) continue;
        if (m.id > server.lmid + 1) return json(200, { error: 'ClientStateNotFound' });
        if (processed === perRequest) break;
        server.applied.push(m.id);
        server.lmid = m.id;
        processed++;
      }
      return json(200, {});
    },
  });
  server.lmid = 0;
  server.applied = [];
  return server;
}

test('a request the server processed only in part is sent again, then the rest', async () => {
  const server = lmidServer(7);
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 1500, fetch: server.fetch });
  const result = await pusher(pushBody(ids(40).map((id) => mutation(id))), 'r');
  assert.deepEqual(result, { httpRequestInfo: { httpStatusCode: 200, errorMessage: '' } });
  assert.deepEqual(server.applied, ids(40), 'every mutation once, in order');
  assert.ok(server.requests.length > 40 / 7);
});

test('a server that never finishes a request: the push gives up, to be retried', async () => {
  const server = lmidServer(0);
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 1500, fetch: server.fetch });
  // Nothing processed: the second request meets a gap again and again.
  await assert.rejects(pusher(pushBody(ids(40).map((id) => mutation(id))), 'r'), /part of the push/);
  assert.ok(server.requests.length < 30, `${server.requests.length} requests`);
});

test('a single mutation over the limit goes alone and the server answer stands', async () => {
  const server = fakeServer({ limit: 3000 });
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 2000, marginBytes: 0, fetch: server.fetch });
  const mutations = [mutation(1), mutation(2), mutation(3, 5000), mutation(4)];
  const result = await pusher(pushBody(mutations), 'r');
  assert.deepEqual(
    server.requests.map((r) => r.ids),
    [[1, 2], [3]],
    'the large one alone, nothing after it',
  );
  assert.equal(result.httpRequestInfo.httpStatusCode, 413);
  assert.equal(JSON.parse(result.httpRequestInfo.errorMessage).maxBytes, 3000);
  // Accepted by a server that takes it: then the rest follows.
  const lenient = fakeServer();
  const pusher2 = makeSplittingPusher({ url: URL, maxBytes: 2000, fetch: lenient.fetch });
  assert.equal((await pusher2(pushBody(mutations), 'r')).httpRequestInfo.httpStatusCode, 200);
  assert.deepEqual(lenient.requests.map((r) => r.ids), [[1, 2], [3], [4]]);
});

test('a 413 with maxBytes lowers the limit to it less the margin and re-splits', async () => {
  const server = fakeServer({ limit: 4000 });
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 50_000, marginBytes: 500, fetch: server.fetch });
  const result = await pusher(pushBody(ids(60).map((id) => mutation(id, 150))), 'r');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  assert.equal(pusher.maxBytes, 3500);
  const [refused, ...rest] = server.requests;
  assert.ok(refused.bytes > 4000);
  assert.deepEqual(refused.ids, ids(60));
  assert.deepEqual(rest.flatMap((r) => r.ids), ids(60), 'all again, in order, after the refusal');
  assert.ok(rest.every((r) => r.bytes <= 3500));
  // The next push starts with the lowered limit: no refusal.
  const before = server.requests.length;
  await pusher(pushBody(ids(20, 61).map((id) => mutation(id, 150))), 'r2');
  assert.ok(server.requests.slice(before).every((r) => r.bytes <= 3500));
});

test('a 413 after some chunks went through resends only from the refused one', async () => {
  // The server's limit drops (say, another deployment) in the middle of a push.
  let limit = 10_000;
  const server = fakeServer();
  const inner = server.fetch;
  server.fetch = async (url, init) => {
    if (server.requests.length === 1) limit = 2000;
    const res = await inner(url, init);
    const last = server.requests.at(-1);
    if (last.bytes > limit) {
      return json(413, { error: 'PayloadTooLarge', message: 'too large', maxBytes: limit });
    }
    return res;
  };
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 8000, marginBytes: 0, fetch: server.fetch });
  const result = await pusher(pushBody(ids(100).map((id) => mutation(id))), 'r');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  const [first, refused, ...rest] = server.requests;
  assert.ok(refused.bytes > 2000);
  assert.equal(refused.ids[0], first.ids.at(-1) + 1);
  assert.deepEqual(rest.flatMap((r) => r.ids), ids(100).slice(first.ids.length));
  assert.ok(rest.every((r) => r.bytes <= 2000));
});

test('a 413 without maxBytes halves the request until it fits', async () => {
  const server = fakeServer({ limit: 1500, announce: false });
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 20_000, fetch: server.fetch });
  const result = await pusher(pushBody(ids(50).map((id) => mutation(id))), 'r');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  const accepted = server.requests.filter((r) => r.bytes <= 1500);
  assert.deepEqual(accepted.flatMap((r) => r.ids), ids(50));
  assert.ok(pusher.maxBytes <= 1500 && pusher.maxBytes > 1500 / 2 - 200, `limit ${pusher.maxBytes}`);
});

test('a 413 for a request within the announced limit (a proxy with a lower one) halves', async () => {
  const server = fakeServer();
  const inner = server.fetch;
  server.fetch = async (url, init) => {
    await inner(url, init);
    const { bytes } = server.requests.at(-1);
    return bytes > 1500 ? json(413, { error: 'PayloadTooLarge', maxBytes: 100_000 }) : json(200, {});
  };
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 20_000, marginBytes: 1000, fetch: server.fetch });
  const result = await pusher(pushBody(ids(50).map((id) => mutation(id))), 'r');
  assert.equal(result.httpRequestInfo.httpStatusCode, 200);
  assert.deepEqual(server.requests.filter((r) => r.bytes <= 1500).flatMap((r) => r.ids), ids(50));
  assert.ok(pusher.maxBytes <= 1500, `limit ${pusher.maxBytes}`);
});

test('url and auth may be functions, read at every request', async () => {
  const server = fakeServer();
  let token = 'Bearer one';
  const pusher = makeSplittingPusher({
    url: () => `${URL}&n=${server.requests.length}`,
    auth: () => token,
    maxBytes: 1500,
    fetch: server.fetch,
  });
  const push = pusher(pushBody(ids(30).map((id) => mutation(id))), 'r');
  token = 'Bearer two';
  await push;
  assert.equal(server.requests[0].init.headers.Authorization, 'Bearer one');
  assert.equal(server.requests.at(-1).init.headers.Authorization, 'Bearer two');
  assert.ok(server.requests.at(-1).url.endsWith(`&n=${server.requests.length - 1}`));
  // No auth: no Authorization header at all, as Replicache's default sends an empty one.
  const anon = fakeServer();
  await makeSplittingPusher({ url: URL, fetch: anon.fetch })(pushBody([mutation(1)]), 'r');
  assert.equal('Authorization' in anon.requests[0].init.headers, false);
});

test('non-ASCII values are measured in bytes, not characters', async () => {
  const server = fakeServer();
  const pusher = makeSplittingPusher({ url: URL, maxBytes: 3000, fetch: server.fetch });
  const wide = ids(20).map((id) => ({ ...mutation(id, 0), args: { key: `k${id}`, value: '€'.repeat(200) } }));
  await pusher(pushBody(wide), 'r');
  assert.ok(server.requests.length > 1);
  assert.ok(server.requests.every((r) => r.bytes <= 3000));
  assert.deepEqual(server.requests.flatMap((r) => r.ids), ids(20));
});
