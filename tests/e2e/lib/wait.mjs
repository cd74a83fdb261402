import {setTimeout as delay} from 'node:timers/promises';

/**
 * Polls `predicate` (sync or async) until it returns a truthy value, which is returned.
 * Fails after `timeoutMs` with `message` and the last value or error seen, also when a
 * call of the predicate itself hangs.
 */
export async function waitFor(predicate, timeoutMs = 10_000, {message = 'condition', intervalMs = 25} = {}) {
  const deadline = Date.now() + timeoutMs;
  const timedOut = Symbol('timed out');
  let last;
  for (;;) {
    const remaining = Math.max(deadline - Date.now(), 1);
    const ac = new AbortController();
    try {
      last = await Promise.race([
        Promise.resolve().then(predicate),
        delay(remaining, timedOut, {signal: ac.signal}),
      ]);
      if (last !== timedOut && last) return last;
    } catch (e) {
      last = e;
    } finally {
      ac.abort();
    }
    if (Date.now() >= deadline) {
      const seen = last === timedOut ? 'the predicate did not return'
        : last instanceof Error ? last.stack : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}; last: ${seen}`);
    }
    await delay(intervalMs);
  }
}
