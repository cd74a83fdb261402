// The client's mutators. Each must do what the server mutator of the same name does
// (functions/sync-core/src/mutators/app.rs); the server's result is what everyone keeps.

export const COUNT_KEY = 'count';

/**
 * @param {{wrongIncrement?: boolean}} [options] `wrongIncrement` is the tutorial's
 *   challenge: the client adds twice the delta, shows that at once, and is corrected by
 *   the next pull, which carries the server's `count + delta`.
 */
export function makeMutators({ wrongIncrement = false } = {}) {
  return {
    /** `count = (count ?? 0) + delta`, as on the server. */
    async increment(tx, delta) {
      const current = (await tx.get(COUNT_KEY)) ?? 0;
      const applied = wrongIncrement ? delta * 2 : delta;
      await tx.set(COUNT_KEY, current + applied);
    },
  };
}
