// The server's `tx`: Replicache's WriteTransaction over one host function,
// `host(op, key, payload)`, which runs the operation on the mutation's `Tx` and answers a
// string tagged by its first character: `v` a JSON value follows, `u` undefined, `t`/`f` a
// boolean, `o` done, `e` an error message follows. Evaluated as a script whose value is a
// function of (host, mutators), returning `run(name, argsJson)`.
(function (host, mutators) {
  'use strict';

  function call(op, key, payload) {
    const answer = host(op, key, payload);
    const tag = answer[0];
    if (tag === 'e') throw new Error(answer.slice(1));
    return answer;
  }

  function checkKey(key) {
    if (typeof key !== 'string') throw new TypeError('a key must be a string');
  }

  // Values cross as JSON; what JSON cannot carry exactly fails the mutation instead of
  // being changed on the way (JSON.stringify would turn NaN into null, drop undefined).
  function toJSON(value) {
    const text = JSON.stringify(value, function (k, v) {
      if (typeof v === 'number' && !Number.isFinite(v)) {
        throw new TypeError('a value must not hold NaN or Infinity');
      }
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') {
        throw new TypeError('a value must be JSON');
      }
      return v;
    });
    if (text === undefined) throw new TypeError('a value must be JSON');
    return text;
  }

  // Replicache orders keys by their UTF-8 bytes (as the store does), which differs from
  // JavaScript's UTF-16 order for characters beyond U+FFFF.
  function compareUTF8(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.codePointAt(i);
      const y = b.codePointAt(i);
      if (x !== y) return x < y ? -1 : 1;
      if (x > 0xffff) i++;
    }
    return a.length - b.length;
  }

  function asyncIterable(load, pick) {
    return {
      async *[Symbol.asyncIterator]() {
        for (const entry of load()) yield pick(entry);
      },
      async toArray() {
        return load().map(pick);
      },
    };
  }

  function scan(options) {
    const opts = options ?? {};
    if (opts.indexName !== undefined) throw new Error('scans of an index are not supported on the server');
    const prefix = opts.prefix ?? '';
    checkKey(prefix);
    const start = opts.start;
    const limit = opts.limit ?? Infinity;
    let entries;
    const load = () => {
      if (entries === undefined) {
        // Without a start key the limit goes to the store; with one, the entries before
        // it are dropped here first.
        const asked = start === undefined && Number.isFinite(limit) ? Math.max(0, limit) : -1;
        let all = JSON.parse(call('scan', prefix, String(asked)).slice(1));
        if (start !== undefined) {
          checkKey(start.key);
          all = all.filter(([k]) => {
            const c = compareUTF8(k, start.key);
            return start.exclusive ? c > 0 : c >= 0;
          });
        }
        entries = Number.isFinite(limit) ? all.slice(0, Math.max(0, limit)) : all;
      }
      return entries;
    };
    const values = asyncIterable(load, ([, v]) => v);
    return {
      [Symbol.asyncIterator]: values[Symbol.asyncIterator],
      toArray: values.toArray,
      values: () => values,
      keys: () => asyncIterable(load, ([k]) => k),
      entries: () => asyncIterable(load, (e) => e),
    };
  }

  function makeTx(clientID, mutationID) {
    const tx = {
      reason: 'authoritative',
      location: 'server',
      async get(key) {
        checkKey(key);
        const answer = call('get', key, '');
        return answer[0] === 'u' ? undefined : JSON.parse(answer.slice(1));
      },
      async has(key) {
        checkKey(key);
        return call('has', key, '') === 't';
      },
      async set(key, value) {
        checkKey(key);
        call('put', key, toJSON(value));
      },
      async del(key) {
        checkKey(key);
        return call('del', key, '') === 't';
      },
      scan,
    };
    tx.put = tx.set;
    if (typeof clientID === 'string' && typeof mutationID === 'number') {
      tx.clientID = clientID;
      tx.mutationID = mutationID;
    } else {
      // Run outside a push (no mutation to name): a mutator that reads these fails rather
      // than see a made-up value.
      for (const name of ['clientID', 'mutationID']) {
        Object.defineProperty(tx, name, {
          get() {
            throw new Error(`tx.${name} is not known outside a push`);
          },
        });
      }
    }
    return Object.freeze(tx);
  }

  return function run(name, argsJson, clientID, mutationID) {
    const mutator = mutators[name];
    return Promise.resolve(mutator(makeTx(clientID, mutationID), JSON.parse(argsJson)));
  };
})
