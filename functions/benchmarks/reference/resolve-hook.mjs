// replicache-express 0.1.5 as published imports some of its own modules without the
// `.js` extension or as directories ("./data", "../backend"), which only TypeScript's and
// bundlers' resolvers accept; Node's ES module loader refuses them. This hook retries such
// a relative specifier with `.js` and then `/index.js`, which is what the package's
// compiled layout means. Nothing else about the package changes.
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith("./") || specifier.startsWith("../");
    if (!relative || specifier.endsWith(".js")) throw error;
    for (const candidate of [`${specifier}.js`, `${specifier}/index.js`]) {
      try {
        return await nextResolve(candidate, context);
      } catch {
        // try the next form
      }
    }
    throw error;
  }
}
