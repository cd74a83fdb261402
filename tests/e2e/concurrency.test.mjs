// Many client groups pushing to one space at once, with and without replayed pushes.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {closeAllClients, makeClient, pendingCount, pullAndReadCount, sendPush} from './lib/client.mjs';
import {post, serverCount, serverLMIDs} from './lib/protocol.mjs';
import {startServer} from './lib/server.mjs';
import {waitFor} from './lib/wait.mjs';

const GROUPS = 8;
const INCREMENTS = 50;
const TOTAL = GROUPS * INCREMENTS;

let server;
before(async () => {
  server = await startServer({label: 'concurrency'});
});
after(async () => {
  await closeAllClients();
  await server?.stop();
});

/** Runs GROUPS clients doing INCREMENTS increments each, in parallel, and checks the result. */
async function incrementInParallel(space, pusherFor) {
  const reps = Array.from({length: GROUPS}, () => {
    const pusher = pusherFor?.();
    return makeClient(server, space, pusher ? {pusher} : {});
  });
  // Pushing every few mutations interleaves many pushes of all clients; each push carries
  // every mutation not yet confirmed, so most are repeats.
  await Promise.all(reps.map(async rep => {
    for (let i = 1; i <= INCREMENTS; i++) {
      await rep.mutate.increment(1);
      if (i % 5 === 0) await rep.push({now: true});
    }
  }));
  // Every client's mutations confirmed by the server.
  await Promise.all(reps.map(rep => waitFor(async () => {
    await rep.pull();
    return (await pendingCount(rep)) === 0;
  }, 90_000, {message: `client ${rep.clientID}'s mutations to be confirmed`, intervalMs: 100})));

  assert.equal(await serverCount(server, space), TOTAL);
  for (const rep of reps) {
    assert.deepEqual(await serverLMIDs(server, space, await rep.clientGroupID), {[rep.clientID]: INCREMENTS});
  }
  for (const rep of reps) {
    assert.equal(await pullAndReadCount(rep), TOTAL);
  }
  return reps;
}

test(`${GROUPS} client groups x ${INCREMENTS} increments in parallel end at exactly ${TOTAL}`, async () => {
  const space = await server.createSpace();
  await incrementInParallel(space);
});

test('replayed pushes (each sent twice at once, then again) apply nothing twice', async () => {
  const space = await server.createSpace();
  const url = server.pushURL(space);
  const requests = [];
  let replays = 0;
  const replayingPusher = () => async (request, requestID) => {
    requests.push(request);
    const [first, second] = await Promise.all([sendPush(url, request, requestID), sendPush(url, request, requestID)]);
    const third = await sendPush(url, request, requestID);
    replays++;
    // Whichever copy succeeded counts for the client; all three reached the server.
    return [first, second, third].find(r => r.httpRequestInfo.httpStatusCode === 200) ?? first;
  };
  await incrementInParallel(space, replayingPusher);
  assert.ok(replays >= GROUPS, `every client pushed (${replays} pushes)`);

  // Every request once more, all at once, after the fact.
  const answers = await Promise.all(requests.map(r => post(url, r)));
  for (const a of answers) assert.ok([200, 503].includes(a.status), `replay answered ${a.status} ${a.text}`);
  assert.equal(await serverCount(server, space), TOTAL);
});
