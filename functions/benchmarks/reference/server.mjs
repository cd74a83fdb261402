// The reference server for the load comparison: replicache-express as published, with its
// default in-memory database (pg-mem: DATABASE_URL unset), on PORT, with the sync
// tutorial's `increment` mutator written exactly like ours (sync-core's mutators/app.rs):
// count = (count ?? 0) + delta, and `setItem` like ours.
//
//   PORT=8081 node server.mjs
import { register } from "node:module";

register("./resolve-hook.mjs", import.meta.url);
const { ReplicacheExpressServer } = await import("replicache-express");

const port = Number(process.env.PORT ?? 8081);
const mutators = {
  async increment(tx, delta) {
    const count = (await tx.get("count")) ?? 0;
    await tx.put("count", count + delta);
  },
  // Fills a space for the first-pull benchmark, as our `setItem` does: `item/<key>`.
  async setItem(tx, { key, value }) {
    await tx.put(`item/${key}`, value);
  },
};

ReplicacheExpressServer.start({ mutators, port, host: "127.0.0.1" }, () => {
  // The load generator waits for this line.
  process.stderr.write(`reference server listening on 127.0.0.1:${port}\n`);
});
