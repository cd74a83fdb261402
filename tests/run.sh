#!/usr/bin/env bash
# The project's test command. From the repository root:
#
#   ./tests/run.sh              every stage
#   ./tests/run.sh e2e-sqlite   only the named check stages (setup always runs)
#   ./tests/run.sh --list       the check stages
#
# Setup (stops the run on failure): install the pinned moto server and the npm packages
# when missing or stale, build the workspace, start one moto server (DynamoDB API) for the
# whole run. Then every check stage runs, even after another failed; the run exits
# non-zero if any stage failed. Logs go to tests/artifacts/.
#
# To add a stage: write a function `stage_<name>` below and add "<name>" to CHECK_STAGES;
# what it needs installed goes into setup_install (e.g. `install_npm_packages client`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# The pinned tool versions (MOTO_VERSION among them): infra/versions.env.
# shellcheck source=infra/versions.env
source "$ROOT/infra/versions.env"
CHECK_STAGES=(fmt clippy cargo-test e2e-sqlite e2e-dynamodb web-client template-lint cargo-lambda-smoke)
ARTIFACTS=$ROOT/tests/artifacts
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export LOCAL_SERVER_BIN=${LOCAL_SERVER_BIN:-$TARGET_DIR/debug/local-server}
# Stage bounds, in seconds; a stuck stage fails instead of hanging the run.
E2E_TIMEOUT=${E2E_TIMEOUT:-600}

# ---------------------------------------------------------------- check stages

stage_fmt() {
  cargo fmt --all -- --check
}

stage_clippy() {
  cargo clippy --workspace --all-targets --locked -- -D warnings
}

stage_cargo-test() {
  cargo test --workspace --locked --no-fail-fast
}

e2e() {
  local store=$1
  cd "$ROOT/tests"
  # Node 20 has a WebSocket client (for the poke tests) behind a flag; newer ones have it anyway.
  E2E_STORE=$store E2E_REQUIRE_WEBSOCKET=1 timeout --foreground --kill-after=10 "$E2E_TIMEOUT" \
    node --experimental-websocket --disable-warning=ExperimentalWarning \
    --test --test-reporter=spec --test-concurrency=1 --test-timeout=120000 e2e/*.test.mjs
}

stage_e2e-sqlite() {
  e2e sqlite
}

stage_e2e-dynamodb() {
  e2e dynamodb
}

# The web client: build, poke-helper unit tests, headless Chromium against the local
# server (client/test.sh installs Chromium and the client's npm packages when missing).
stage_web-client() {
  SKIP_SERVER_BUILD=1 timeout --kill-after=10 "$E2E_TIMEOUT" bash "$ROOT/client/test.sh"
}

# The SAM template, linted offline (cfn-lint and `sam validate --lint`, pinned, installed
# into their own virtual environments when missing).
stage_template-lint() {
  bash "$ROOT/infra/lint.sh"
}

# The real Lambda binaries under `cargo lambda watch` against this run's moto.
stage_cargo-lambda-smoke() {
  timeout --kill-after=10 "$E2E_TIMEOUT" bash "$ROOT/infra/cargo-lambda-smoke.sh"
}

# ---------------------------------------------------------------- setup

setup_install() {
  install_moto
  check_same_replicache client tests
  install_npm_packages tests
}

# The web client and the end-to-end tests must run the same replicache release.
check_same_replicache() { # dir...
  local dir version first=
  for dir in "$@"; do
    version=$(node -p "require('$ROOT/$dir/package.json').dependencies.replicache")
    if [[ -z $first ]]; then
      first=$version
    elif [[ $version != "$first" ]]; then
      echo "replicache is $first in $1/package.json but $version in $dir/package.json" >&2
      return 1
    fi
  done
  echo "replicache $first in $*"
}

moto_installed_version() {
  python3 -c 'import importlib.metadata as m, moto.server; print(m.version("moto"))' 2>/dev/null || true
}

# moto_server of the python3 on PATH, else any on PATH.
find_moto_server() {
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [[ -x $scripts/moto_server ]]; then
    echo "$scripts/moto_server"
  else
    command -v moto_server || true
  fi
}

install_moto() {
  local have
  have=$(moto_installed_version)
  if [[ -n $(find_moto_server) && $have == "$MOTO_VERSION" ]]; then
    echo "moto $MOTO_VERSION: present"
    return
  fi
  echo "moto: installing $MOTO_VERSION (found: ${have:-none})"
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  hash -r
  [[ $(moto_installed_version) == "$MOTO_VERSION" && -n $(find_moto_server) ]] || {
    echo "moto $MOTO_VERSION did not install a working moto_server" >&2
    return 1
  }
}

# `npm ci` in DIR (relative to the root) when its node_modules is missing or older than
# its package.json or package-lock.json (npm ci writes node_modules/.package-lock.json).
install_npm_packages() { # dir
  local dir=$ROOT/$1
  local stamp=$dir/node_modules/.package-lock.json
  if [[ -f $stamp && ! $dir/package-lock.json -nt $stamp && ! $dir/package.json -nt $stamp ]]; then
    echo "npm packages of $1/: up to date"
    return
  fi
  echo "npm packages of $1/: installing"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
}

setup_build() {
  cargo build --workspace --all-targets --locked
  [[ -x $LOCAL_SERVER_BIN ]] || {
    echo "the build did not produce $LOCAL_SERVER_BIN" >&2
    return 1
  }
}

MOTO_PID=
# One moto server for the whole run: moto_server's own app answering one request at a
# time, as DynamoDB serializes conflicting writes (plain moto_server runs requests on
# threads without locking and loses transactions under concurrency).
# Runs in this shell (not a subshell) so that the EXIT trap knows the PID.
start_moto() {
  local port attempt
  for attempt in 1 2 3; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 "$ROOT/functions/test-support/serial_moto.py" 127.0.0.1 "$port" >"$ARTIFACTS/moto.log" 2>&1 &
    MOTO_PID=$!
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
      if ! kill -0 "$MOTO_PID" 2>/dev/null; then
        break
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        export DYNAMODB_ENDPOINT=http://127.0.0.1:$port
        export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
        export AWS_DEFAULT_REGION=us-east-1
        echo "moto server (pid $MOTO_PID) at $DYNAMODB_ENDPOINT"
        return 0
      fi
      sleep 0.1
    done
    stop_moto
    echo "moto did not start on port $port (attempt $attempt):" >&2
    tail -n 20 "$ARTIFACTS/moto.log" >&2 || true
  done
  return 1
}

stop_moto() {
  [[ -n $MOTO_PID ]] || return 0
  if kill -0 "$MOTO_PID" 2>/dev/null; then
    kill -TERM "$MOTO_PID" 2>/dev/null || true
    local i
    for i in $(seq 50); do
      kill -0 "$MOTO_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$MOTO_PID" 2>/dev/null || true
  fi
  wait "$MOTO_PID" 2>/dev/null || true
  MOTO_PID=
}

# ---------------------------------------------------------------- runner

RESULTS=()
PASSED=0
FAILED=0

header() {
  printf '\n==================== %s ====================\n' "$1"
}

record() { # name status seconds [detail]
  local line
  line=$(printf '  %-5s %-14s %5ss  %s' "$2" "$1" "$3" "${4:-}")
  line=${line%"${line##*[! ]}"}
  RESULTS+=("$line")
  if [[ $2 == PASS ]]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

# Test counts from a stage log (cargo test and node's test runner), if any.
test_counts() {
  local log=$1
  python3 - "$log" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
p = f = 0
found = False
for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
    p += int(m[1]); f += int(m[2]); found = True
for m in re.finditer(r"^\S*\s*(?:# )?pass (\d+)\s*$.*?^\S*\s*(?:# )?fail (\d+)\s*$", text, re.M | re.S):
    p += int(m[1]); f += int(m[2]); found = True
print(f"{p} tests passed, {f} failed" if found else "")
EOF
}

STAGE_PID=
# Runs `fn` in a subshell with errexit, output to the terminal and to a log. The stage is
# a background job (its own process group, see `set -m`) that this shell waits for, so
# that an interrupt stops the whole stage at once.
run_stage() { # name fn
  local name=$1 fn=$2 log="$ARTIFACTS/$1.log" start rc
  header "$name"
  start=$SECONDS
  {
    (set -e; "$fn") 2>&1 | tee "$log"
    exit "${PIPESTATUS[0]}"
  } &
  STAGE_PID=$!
  rc=0
  wait "$STAGE_PID" || rc=$?
  # Whatever the stage left running (e.g. after a timeout) goes with it.
  kill -TERM -- "-$STAGE_PID" 2>/dev/null || true
  STAGE_PID=
  if ((rc == 0)); then
    record "$name" PASS $((SECONDS - start)) "$(test_counts "$log")"
  else
    echo "stage $name failed (exit $rc); log: $log"
    record "$name" FAIL $((SECONDS - start)) "$(test_counts "$log")"
  fi
  return "$rc"
}

summary() {
  header "summary"
  local line
  for line in "${RESULTS[@]}"; do echo "$line"; done
  echo "stages: $PASSED passed, $FAILED failed"
}

on_exit() {
  local rc=$?
  if [[ -n $STAGE_PID ]]; then
    kill -TERM -- "-$STAGE_PID" 2>/dev/null || true
    wait "$STAGE_PID" 2>/dev/null || true
  fi
  stop_moto
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- main

selected=()
for arg in "$@"; do
  case $arg in
    --list) printf '%s\n' "${CHECK_STAGES[@]}"; exit 0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *)
      if [[ " ${CHECK_STAGES[*]} " != *" $arg "* ]]; then
        echo "unknown stage '$arg'; stages: ${CHECK_STAGES[*]}" >&2
        exit 2
      fi
      selected+=("$arg")
      ;;
  esac
done
((${#selected[@]})) || selected=("${CHECK_STAGES[@]}")

# Logs of this run only.
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
export CARGO_TERM_COLOR=never
# Job control: every background job (a stage, moto) gets its own process group.
set -m

setup_ok=true
run_stage install setup_install || setup_ok=false
if $setup_ok; then run_stage build setup_build || setup_ok=false; fi
if $setup_ok; then
  header "moto"
  start=$SECONDS
  if start_moto; then
    record moto PASS $((SECONDS - start)) "$DYNAMODB_ENDPOINT"
  else
    record moto FAIL $((SECONDS - start))
    setup_ok=false
  fi
fi

for name in "${selected[@]}"; do
  if $setup_ok; then
    run_stage "$name" "stage_$name" || true
  else
    RESULTS+=("$(printf '  %-5s %-14s' SKIP "$name")")
  fi
done

summary
((FAILED == 0))
