#!/usr/bin/env bash
# Starts the product on this machine: builds the web client (npm packages installed when
# missing or stale), then runs the local server on http://127.0.0.1:${PORT:-8080}/ with the
# embedded SQLite store in ${DATA_DIR:-.data}. Every setting of the server is an
# environment variable (see README.md, "Run locally"); for example
#   PORT=9090 ./infra/run-local.sh
#   DYNAMODB_ENDPOINT=http://127.0.0.1:5000 TABLE_NAME=replicache ./infra/run-local.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v npm >/dev/null 2>&1; then
  # package-lock.json newer than the installed tree means the tree is stale.
  if [[ ! -d client/node_modules || client/package-lock.json -nt client/node_modules/.package-lock.json ]]; then
    npm ci --prefix client --no-audit --no-fund
  fi
  npm run --prefix client build
else
  echo "npm not found: serving the API only (install Node.js 20+ for the web client)" >&2
fi

exec cargo run --release --locked -p local-server
