// The browser's side of tests/equivalence.rs: generates random cases from a seed, runs
// the app's mutators (client/src/mutators.js) on each as Replicache in a browser would,
// over a transaction on an in-memory sorted map, and prints the cases with their outcomes
// as JSON: `{cases: [{initial, mutations: [{name, args}], ok: [bool], state}]}`.
//
//   node equivalence.mjs SEED COUNT

import { makeMutators } from '../../../client/src/mutators.js';

const [seed = '1', count = '300'] = process.argv.slice(2);

// mulberry32: a small seeded generator, so that a failing seed can be rerun.
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = generator(Number(seed));
const int = (n) => Math.floor(random() * n);
const pick = (xs) => xs[int(xs.length)];

// Keys whose UTF-8 order differs from their UTF-16 order (U+E000 against an astral
// character), and a few that share prefixes.
const KEYS = ['a', 'b', 'ab', 'a/b', 'é', '日本', '😀', '\uE000', 'z😀', 'zz', '0', '~'];

function number() {
  return pick([
    () => 0.1 + 0.2,
    () => 1e300,
    () => -1e300,
    () => -0,
    () => 5e-324,
    () => 1e21,
    () => 2 ** 53 + 2,
    () => int(1000) - 500,
    () => (random() - 0.5) * 10 ** int(30),
    () => random(),
    () => 1 / 3,
  ])();
}

function string() {
  return pick(['', 'x', 'héllo', '日本語', '😀👍🏽', '\u0000\u001f"\\', '\uE000', 'a'.repeat(int(50))]);
}

function value(depth = 0) {
  const kind = depth > 4 ? int(4) : int(7);
  switch (kind) {
    case 0: return number();
    case 1: return string();
    case 2: return pick([true, false, null]);
    case 3: return number();
    case 4: return Array.from({ length: int(4) }, () => value(depth + 1));
    case 5: {
      const o = {};
      for (let i = int(4); i > 0; i--) o[pick(KEYS)] = value(depth + 1);
      return o;
    }
    default: {
      // Nested up to the stores' depth limit (100 levels) and no further.
      let v = number();
      for (let i = 1 + int(100 - depth); i > 0; i--) v = int(2) ? [v] : { k: v };
      return v;
    }
  }
}

function mutation() {
  switch (int(9)) {
    case 0:
    case 1:
      return { name: 'increment', args: pick([number, number, number, () => '1', () => null, () => 1e308])() };
    case 2:
    case 3:
      return { name: 'setItem', args: pick([
        () => ({ key: pick(KEYS), value: value() }),
        () => ({ key: pick(KEYS), value: number() }),
        () => ({ key: pick(KEYS), value: value() }),
        () => ({ key: '', value: 1 }),
        () => ({ key: 7, value: 1 }),
        () => ({ key: pick(KEYS) }),
        () => [pick(KEYS), 1],
      ])() };
    case 4:
    case 5:
      return { name: 'deleteItem', args: pick([() => ({ key: pick(KEYS) }), () => ({ key: pick(KEYS) }), () => ({}), () => null])() };
    case 6:
    case 7:
      return { name: 'sumItems', args: null };
    default:
      return { name: 'clearItems', args: null };
  }
}

function initial() {
  const state = {};
  for (let i = int(6); i > 0; i--) state['item/' + pick(KEYS)] = int(3) ? number() : value();
  if (int(2)) state.count = int(5) ? number() : string();
  if (int(4) === 0) state['other/' + pick(KEYS)] = value();
  return wire(state);
}

// As values reach the server and come back: through JSON.
function wire(v) {
  return JSON.parse(JSON.stringify(v));
}

// Replicache orders keys by their UTF-8 bytes.
function compareUTF8(a, b) {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

// A WriteTransaction over `map` (key -> value), writing into `writes` first.
function transaction(map) {
  const writes = new Map();
  const read = (key) => (writes.has(key) ? writes.get(key) : map.get(key));
  const scan = ({ prefix = '' } = {}) => {
    const keys = new Set([...map.keys(), ...writes.keys()]);
    const load = () =>
      [...keys]
        .filter((k) => k.startsWith(prefix) && read(k) !== undefined)
        .sort(compareUTF8)
        .map((k) => [k, read(k)]);
    const iterable = (f) => ({
      async *[Symbol.asyncIterator]() { for (const e of load()) yield f(e); },
      async toArray() { return load().map(f); },
    });
    const values = iterable(([, v]) => v);
    return { ...values, values: () => values, keys: () => iterable(([k]) => k), entries: () => iterable((e) => e) };
  };
  const tx = {
    reason: 'initial',
    async get(key) { return read(key); },
    async has(key) { return read(key) !== undefined; },
    async set(key, v) { writes.set(key, wire(v)); },
    async del(key) { const had = read(key) !== undefined; writes.set(key, undefined); return had; },
    scan,
  };
  tx.put = tx.set;
  return { tx, writes };
}

const mutators = makeMutators();
const cases = [];
for (let c = 0; c < Number(count); c++) {
  const start = initial();
  const map = new Map(Object.entries(start));
  const mutations = Array.from({ length: 1 + int(6) }, mutation).map(wire);
  const ok = [];
  for (const m of mutations) {
    const { tx, writes } = transaction(map);
    try {
      await mutators[m.name](tx, m.args);
      for (const [k, v] of writes) {
        if (v === undefined) map.delete(k);
        else map.set(k, v);
      }
      ok.push(true);
    } catch {
      ok.push(false);
    }
  }
  cases.push({ initial: start, mutations, ok, state: Object.fromEntries(map) });
}
process.stdout.write(JSON.stringify({ cases }));
