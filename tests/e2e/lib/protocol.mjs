// Raw HTTP access to the sync API, for protocol-level checks.

import {randomID} from './server.mjs';

/** POSTs `body` (an object is sent as JSON, a string as is); returns {status, headers, text, json}. */
export async function post(url, body, {headers = {}} = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {'content-type': 'application/json', ...headers},
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {status: res.status, headers: res.headers, text, json};
}

export function rawPush(server, spaceID, {clientGroupID, mutations, ...rest}) {
  return post(server.pushURL(spaceID), {
    pushVersion: 1,
    clientGroupID,
    profileID: 'p-e2e',
    schemaVersion: '',
    mutations: mutations.map(m => ({timestamp: 1, args: null, ...m})),
    ...rest,
  });
}

export function rawPull(server, spaceID, {clientGroupID = randomID('g'), cookie = null, ...rest} = {}) {
  return post(server.pullURL(spaceID), {
    pullVersion: 1,
    clientGroupID,
    profileID: 'p-e2e',
    schemaVersion: '',
    cookie,
    ...rest,
  });
}

/** A successful pull's body; throws with the answer otherwise. */
export async function pullOK(server, spaceID, opts) {
  const res = await rawPull(server, spaceID, opts);
  if (res.status !== 200 || !res.json || 'error' in res.json) {
    throw new Error(`pull answered ${res.status} ${res.text}`);
  }
  return res.json;
}

/** The space's server state as a key -> value map, from a full pull by a fresh client group. */
export async function serverState(server, spaceID) {
  const {patch} = await pullOK(server, spaceID, {cookie: null});
  const state = {};
  for (const op of patch) {
    if (op.op === 'clear') for (const k of Object.keys(state)) delete state[k];
    else if (op.op === 'put') state[op.key] = op.value;
    else if (op.op === 'del') delete state[op.key];
  }
  return state;
}

/** The server's `count` (undefined when unset). */
export async function serverCount(server, spaceID) {
  return (await serverState(server, spaceID)).count;
}

/** The lastMutationIDs the server reports for a client group (full pull). */
export async function serverLMIDs(server, spaceID, clientGroupID) {
  return (await pullOK(server, spaceID, {clientGroupID, cookie: null})).lastMutationIDChanges;
}
