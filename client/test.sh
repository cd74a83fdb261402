#!/usr/bin/env bash
# Installs what is missing, builds the web client and runs its unit and browser tests.
#
#   client/test.sh
#
# Env: LOCAL_SERVER_BIN (default target/debug/local-server, built here with
# `cargo build -p local-server` unless LOCAL_SERVER_BIN is set or SKIP_SERVER_BUILD=1),
# CHROMIUM_BIN (default /usr/bin/chromium). Screenshots and the server log go to
# client/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
client_dir=$(pwd)
repo_root=$(cd .. && pwd)

step() { printf '\n== %s\n' "$*"; }

# Chromium from Debian, only when absent.
if [[ -z "${CHROMIUM_BIN:-}" && ! -x /usr/bin/chromium ]]; then
  step "installing chromium (apt)"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
fi

# node_modules, when missing or installed from another package-lock.json.
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

step "building the client"
npm run build

if [[ -z "${LOCAL_SERVER_BIN:-}" && "${SKIP_SERVER_BUILD:-0}" != 1 ]]; then
  step "building the local server"
  (cd "$repo_root" && cargo build -p local-server)
fi

step "unit and browser tests"
mkdir -p test-artifacts
node --test --test-concurrency=1 \
  tests/poke.test.mjs tests/config.test.mjs tests/auth.test.mjs tests/pusher.test.mjs \
  tests/server-poke.test.mjs tests/browser.test.mjs tests/browser-auth.test.mjs \
  tests/browser-large-pull.test.mjs
echo "screenshots: $client_dir/test-artifacts/"
