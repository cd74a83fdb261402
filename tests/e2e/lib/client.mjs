// Real Replicache clients in Node, on the in-memory store.
//
// Replicache instances with the same `name` in one process share the in-memory store and
// so form one client group; different names make different client groups.

import {setMaxListeners} from 'node:events';
import {Replicache} from 'replicache';
import {randomID} from './server.mjs';

// Replicache adds an abort listener to one signal per pending back-off wait; under heavy
// contention a client has more than Node's default of 10, which is not a leak.
setMaxListeners(100);

/** The sync tutorial's mutator; the server's `increment` does the same. */
export const mutators = {
  async increment(tx, delta) {
    const prev = await tx.get('count');
    await tx.set('count', (prev ?? 0) + delta);
  },
};

const open = new Set();

/**
 * A Replicache client of `spaceID` on `server`.
 * options.group: clients with the same group (within one space) share a client group;
 *   by default every client is its own group.
 * Everything else is passed to Replicache (mutators, pusher, puller, pullInterval, ...).
 */
export function makeClient(server, spaceID, {group = randomID(), ...options} = {}) {
  const rep = new Replicache({
    name: `e2e:${spaceID}:${group}`,
    kvStore: 'mem',
    pushURL: server.pushURL(spaceID),
    pullURL: server.pullURL(spaceID),
    pullInterval: null,
    pushDelay: 10,
    logLevel: 'error',
    mutators,
    ...options,
  });
  open.add(rep);
  return rep;
}

/** Closes every client made by makeClient that is still open. */
export async function closeAllClients() {
  const reps = [...open];
  open.clear();
  await Promise.all(reps.map(rep => rep.close()));
}

export function readCount(rep) {
  return rep.query(tx => tx.get('count'));
}

export async function pendingCount(rep) {
  return (await rep.experimentalPendingMutations()).length;
}

/** Pulls, then reads `count` (for use inside waitFor). */
export async function pullAndReadCount(rep) {
  await rep.pull();
  return readCount(rep);
}

/**
 * Sends a push request the way Replicache's default pusher does, to `url`.
 * Returns a PusherResult.
 */
export async function sendPush(url, request, requestID = '') {
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {'content-type': 'application/json', 'x-replicache-requestid': requestID},
      body: JSON.stringify(request),
    });
  } catch (e) {
    return {httpRequestInfo: {httpStatusCode: 0, errorMessage: String(e)}};
  }
  const text = await res.text();
  const result = {httpRequestInfo: {httpStatusCode: res.status, errorMessage: res.status === 200 ? '' : text}};
  if (res.status === 200) {
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === 'string') result.response = body;
    } catch {
      // the body of a successful push is ignored
    }
  }
  return result;
}

/**
 * A pusher that records every request and, while `offline` is true, sends nothing and
 * reports success (like a client whose pushes are disabled): the mutations stay pending
 * until a later push carries them. `send` can replace the network call.
 */
export function recordingPusher(url, {offline = false, send = sendPush} = {}) {
  const pusher = async (request, requestID) => {
    pusher.requests.push({request: structuredClone(request), sent: !pusher.offline});
    if (pusher.offline) return {httpRequestInfo: {httpStatusCode: 200, errorMessage: ''}};
    return send(url, request, requestID);
  };
  pusher.offline = offline;
  pusher.requests = [];
  return pusher;
}
