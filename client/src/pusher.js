// A Replicache pusher that splits a push too large for the server into several requests.
//
// Replicache sends every pending mutation in one push. The server refuses a body over its
// limit (413 `PayloadTooLarge`), so a client that made more than that offline would send
// the same refused push for ever. This pusher sends the mutations in consecutive requests,
// each under a byte limit, in order, and stops at the first request that does not succeed:
// its result goes back to Replicache, which retries the push later from the first mutation
// the server has not confirmed (the server skips mutations it has applied already, by
// their IDs, so resending a chunk is harmless).
//
// The server may process only a prefix of a request (at its deadline) and answer 200; the
// next request then starts past a gap and is answered `ClientStateNotFound`. Within one
// push, that answer after an accepted request means exactly this: the previous request is
// sent again (the server skips what it applied and goes on), then the rest.
//
// A mutation larger than the limit on its own cannot be split: it goes alone, and the
// server's answer stands (a 413 for a mutation beyond the server's limit; such a push
// never succeeds, as with Replicache's default pusher).
//
// Only `fetch` is needed: it runs in browsers and in Node.

/** The server's body limit, in bytes (`sync_core::api::MAX_BODY_BYTES`: 6 MiB). */
export const SERVER_MAX_BYTES = 6 * 1024 * 1024;

/**
 * Kept below the server's limit by default: on AWS the body travels inside a Lambda event
 * that must fit the same 6 MB, with headers and request context, and the body as an
 * escaped JSON string (quotes doubled) or base64 (a third larger). A body just under the
 * server's limit may be refused before the function runs; one of 4 MiB is not.
 */
export const DEFAULT_MARGIN_BYTES = 2 * 1024 * 1024;

/** Resends in a row of one partly processed request before the push is given up. */
const MAX_RESENDS = 8;

const encoder = new TextEncoder();
const byteLength = (text) => encoder.encode(text).length;

/**
 * The `maxBytes` of a 413 body (`{"error":"PayloadTooLarge","maxBytes":N,...}`), if any.
 * @param {string} text
 */
function maxBytesOf(text) {
  try {
    const n = JSON.parse(text)?.maxBytes;
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

const ok = () => ({ httpRequestInfo: { httpStatusCode: 200, errorMessage: '' } });

/** A 200 body Replicache acts on (the only `response` a `PusherResult` may carry). */
function isPushResponse(json) {
  return (
    json !== null &&
    typeof json === 'object' &&
    (json.error === 'ClientStateNotFound' || json.error === 'VersionNotSupported')
  );
}

/**
 * Makes a pusher for Replicache's `pusher` option.
 *
 * @param {object} options
 * @param {string | (() => string)} options.url the push URL (e.g. `() => rep.pushURL`).
 * @param {string | (() => string | undefined) | undefined} [options.auth] the
 *   `Authorization` header; a function is read at each request (e.g. `() => rep.auth`, so
 *   that a token renewed through `getAuth` is the one sent).
 * @param {number} [options.maxBytes] the most bytes of one request body; default
 *   {@link SERVER_MAX_BYTES} less `marginBytes`.
 * @param {number} [options.marginBytes] kept below a limit the server announces in a 413
 *   (and below {@link SERVER_MAX_BYTES} for the default); default
 *   {@link DEFAULT_MARGIN_BYTES}.
 * @param {typeof fetch} [options.fetch] default `globalThis.fetch`.
 * @param {(r: {requestID: string, index: number, mutations: number, bytes: number,
 *   status: number}) => void} [options.onRequest] called after each request answered.
 * @returns {((body: object, requestID: string) => Promise<{httpRequestInfo:
 *   {httpStatusCode: number, errorMessage: string}, response?: object}>) &
 *   {readonly maxBytes: number}} the pusher; its `maxBytes` is the limit in use (lowered
 *   when the server answers 413).
 */
export function makeSplittingPusher({
  url,
  auth,
  maxBytes,
  marginBytes = DEFAULT_MARGIN_BYTES,
  fetch: fetchFn = (...args) => globalThis.fetch(...args),
  onRequest,
}) {
  const urlOf = typeof url === 'function' ? url : () => url;
  const authOf = typeof auth === 'function' ? auth : () => auth;
  let limit = maxBytes ?? Math.max(1, SERVER_MAX_BYTES - marginBytes);
  if (!(Number.isSafeInteger(limit) && limit > 0)) {
    throw new RangeError(`maxBytes must be a positive integer, not ${limit}`);
  }

  async function send(text, requestID) {
    const headers = {
      'Content-type': 'application/json',
      'X-Replicache-RequestID': requestID,
    };
    const authorization = authOf();
    if (authorization) headers.Authorization = authorization;
    return fetchFn(urlOf(), { method: 'POST', headers, body: text });
  }

  const pusher = async (body, requestID) => {
    const mutations = Array.isArray(body?.mutations) ? body.mutations : [];
    // The body without its mutations, and where they go in its JSON text.
    const MARK = '\u0000mutations\u0000';
    const [head, tail] = JSON.stringify({ ...body, mutations: MARK }).split(JSON.stringify(MARK));
    const frameBytes = byteLength(head) + byteLength(tail) + 2; // + "[" and "]"

    let next = 0; // the first mutation not yet sent
    let previous; // the first mutation of the last request accepted, if any
    let resends = 0; // of a request answered 200 that the server did not finish
    let index = 0; // requests made by this call
    do {
      // The next chunk: at least one mutation, more while the body stays within the limit.
      const parts = [];
      let bytes = frameBytes;
      for (let i = next; i < mutations.length; i++) {
        const part = JSON.stringify(mutations[i]);
        const add = byteLength(part) + (parts.length ? 1 : 0);
        if (parts.length && bytes + add > limit) break;
        parts.push(part);
        bytes += add;
      }
      const text = `${head}[${parts.join(',')}]${tail}`;
      const res = await send(text, requestID);
      const status = res.status;
      onRequest?.({ requestID, index, mutations: parts.length, bytes, status });
      index++;

      if (status !== 200) {
        const errorMessage = await res.text();
        if (status === 413) {
          // Too large after all: the limit the server announces, if any, holds for this
          // push and the next ones.
          const announced = maxBytesOf(errorMessage);
          if (announced !== undefined) limit = Math.max(1, Math.min(limit, announced - marginBytes));
          if (parts.length > 1) {
            // Refused within the limit (none announced, or a proxy with a lower one):
            // halve it. Then split this chunk again.
            if (bytes <= limit) limit = Math.max(1, Math.floor(bytes / 2));
            continue;
          }
        }
        return { httpRequestInfo: { httpStatusCode: status, errorMessage } };
      }
      let json;
      try {
        json = await res.json();
      } catch {
        json = undefined; // a successful push's body is not needed
      }
      if (json?.error === 'ClientStateNotFound' && previous !== undefined) {
        // The server stops a push early (its deadline, its commits per push) and still
        // answers 200: the previous request was only partly processed, so this one starts
        // past a gap. Not lost state: send the previous one again (the server skips what
        // it applied) and go on from there.
        if (++resends > MAX_RESENDS) {
          throw new Error('the server keeps processing only part of the push; retry later');
        }
        next = previous;
        previous = undefined;
        continue;
      }
      // ClientStateNotFound, VersionNotSupported: nothing later can succeed; Replicache acts.
      if (isPushResponse(json)) return { ...ok(), response: json };
      if (previous !== undefined) resends = 0; // a request after the resent one went through
      previous = next;
      next += parts.length;
    } while (next < mutations.length);
    return ok();
  };
  Object.defineProperty(pusher, 'maxBytes', { get: () => limit, enumerable: true });
  return pusher;
}
