// The app's mutators, written once: the browser runs them speculatively through
// Replicache, and the server runs this same file with authority (compiled into its
// binaries by functions/js-mutators). Keep it one self-contained ES module (no imports)
// and every mutator deterministic given what it reads: the server may run one again.
// On the server `tx.reason` is "authoritative"; a mutator that throws, or whose promise
// rejects, has no effect there.

export const COUNT_KEY = 'count';
export const ITEM_PREFIX = 'item/';
export const SUM_KEY = 'sum';

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function itemKey(args) {
  const key = isObject(args) ? args.key : undefined;
  if (typeof key !== 'string' || key === '') {
    throw new TypeError('`key` must be a non-empty string');
  }
  return ITEM_PREFIX + key;
}

/**
 * @param {{wrongIncrement?: boolean}} [options] `wrongIncrement` is the tutorial's
 *   challenge: the client adds twice the delta, shows that at once, and is corrected by
 *   the next pull, which carries the server's `count + delta`. The server calls
 *   `makeMutators()` with no options.
 */
export function makeMutators({ wrongIncrement = false } = {}) {
  return {
    /** `count = (count ?? 0) + delta`. */
    async increment(tx, delta) {
      if (typeof delta !== 'number' || !Number.isFinite(delta)) {
        throw new TypeError('delta must be a finite number');
      }
      const stored = await tx.get(COUNT_KEY);
      const current = stored === undefined ? 0 : stored;
      if (typeof current !== 'number') throw new Error('the stored count is not a number');
      const applied = wrongIncrement ? delta * 2 : delta;
      const next = current + applied;
      if (!Number.isFinite(next)) throw new RangeError('the count would overflow');
      await tx.set(COUNT_KEY, next);
    },

    /** `setItem({key, value})`: stores any JSON value under `item/<key>`. */
    async setItem(tx, args) {
      const key = itemKey(args);
      if (!('value' in args)) throw new TypeError('`value` is missing');
      await tx.set(key, args.value);
    },

    /** `deleteItem({key})`: removes `item/<key>`. */
    async deleteItem(tx, args) {
      await tx.del(itemKey(args));
    },

    /** `sumItems()`: `sum` = the total of the items whose value is a number. */
    async sumItems(tx) {
      let total = 0;
      for await (const value of tx.scan({ prefix: ITEM_PREFIX })) {
        if (typeof value === 'number') total += value;
      }
      if (!Number.isFinite(total)) throw new RangeError('the sum would overflow');
      await tx.set(SUM_KEY, total);
    },

    /** `clearItems()`: removes every item. */
    async clearItems(tx) {
      for (const key of await tx.scan({ prefix: ITEM_PREFIX }).keys().toArray()) {
        await tx.del(key);
      }
    },
  };
}
