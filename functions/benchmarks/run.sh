#!/usr/bin/env bash
# The benchmark command: runs every benchmark of this crate and rewrites the generated
# sections of BENCHMARKS.md (between `<!-- BEGIN name -->` and `<!-- END name -->`).
# From the repository root:
#
#   functions/benchmarks/run.sh            everything (about 15 minutes on 2 cores)
#   functions/benchmarks/run.sh costs load only the named steps
#                                          (costs load pokes coldstart engine writers cost)
#   functions/benchmarks/run.sh writers    contended writers in separate processes (1, 2, 8,
#                                          32) on the DynamoDB stand-in and on moto (about
#                                          2 minutes)
#   functions/benchmarks/run.sh cost       cost per operation and the Lambda memory sizes,
#                                          measured on the DynamoDB stand-in under CPU
#                                          quotas (root, for the cgroup) and priced from
#                                          prices.json: rewrites COST.md (about 3 minutes)
#   functions/benchmarks/run.sh instructions
#                                          the engine's instructions per operation in the
#                                          release profile (built for size) beside the
#                                          `speed` profile, under valgrind (not in the
#                                          default steps: it compiles the dependencies in
#                                          the other profile, ~15 minutes)
#
# Needs: Rust, Node >= 20 with npm, python3 with moto[server] at infra/versions.env's version (installed when
# missing). Not part of the test command: speed is reported here, never asserted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BENCH=$ROOT/functions/benchmarks
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
# The pinned tool versions (MOTO_VERSION among them).
# shellcheck source=infra/versions.env
source infra/versions.env
RESULTS=$(mktemp -d)
STEPS=("$@")
ALL_STEPS=0
if [[ ${#STEPS[@]} -eq 0 ]]; then
  STEPS=(costs load pokes coldstart engine writers cost)
  ALL_STEPS=1
fi

log() { printf '\n== %s (%s, load %s)\n' "$*" "$(date +%T)" "$(cut -d' ' -f1 /proc/loadavg)"; }
wants() { local s; for s in "${STEPS[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

started=$SECONDS
log "setup"
if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("moto") != "'$MOTO_VERSION'")' 2>/dev/null; then
  python3 -m pip install --quiet "moto[server]==$MOTO_VERSION"
fi
if [[ ! -d $BENCH/reference/node_modules/replicache-express ]]; then
  (cd "$BENCH/reference" && npm ci --no-audit --no-fund)
fi
# The servers under test and the Lambda binaries, in the release profile (stripped).
# BENCH_SKIP_BUILD=1 uses the binaries as they are (while another build holds cargo's lock);
# BENCH_DOC=FILE writes the tables into a copy of BENCHMARKS.md instead (a trial run).
if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
  cargo build --release --locked -p benchmarks -p local-server -p lambda-handlers --bins
fi

# One DynamoDB-compatible server for every step: test-support's serialized moto (racing
# transactions behave as in DynamoDB), with rollback copies of only the items a
# transaction names, so that big tables stay usable (see moto_bench.py).
MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$BENCH/moto_bench.py" 127.0.0.1 "$MOTO_PORT" \
  >"$RESULTS/moto.log" 2>&1 &
MOTO_PID=$!
stop_moto() {
  kill "$MOTO_PID" 2>/dev/null || return 0
  sleep 1
  kill -9 "$MOTO_PID" 2>/dev/null || true
}
trap 'stop_moto; rm -rf "$RESULTS"' EXIT
export DYNAMODB_ENDPOINT=http://127.0.0.1:$MOTO_PORT
for _ in $(seq 300); do
  (echo >"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
  sleep 0.1
done

cd "$ROOT"
if wants costs; then
  log "DynamoDB costs, scale, concurrent writers (moto)"
  "$BIN/dynamo-costs" --max-entries 100000 --writer-seconds 3 \
    --out "$RESULTS/costs.md" --out-scale "$RESULTS/scale.md" --out-writers "$RESULTS/writers-dynamodb.md"
fi
if wants load; then
  log "load: local server vs replicache-express"
  "$BIN/loadgen" --seconds 5 --out "$RESULTS/load.md" --out-writers "$RESULTS/writers-local.md"
  log "load: first pulls of 10k entries, local server vs replicache-express"
  "$BIN/firstpull" --entries 10000 --clients 8 --seconds 5 --out "$RESULTS/first-pull.md"
fi
if wants pokes; then
  log "push latency with poke connections"
  "$BIN/poke-latency" --pushes 30 --out "$RESULTS/pokes.md"
fi
if wants coldstart; then
  log "cold start and binary sizes"
  "$BIN/coldstart" --runs 5 --out "$RESULTS/coldstart.md"
fi
if wants engine; then
  log "engine CPU (criterion)"
  rm -rf "$TARGET_DIR/criterion"
  cargo bench --locked -p benchmarks --bench engine
  python3 "$BENCH/criterion_table.py" "$TARGET_DIR/criterion" >"$RESULTS/engine.md"
fi

if wants instructions; then
  log "engine instructions per operation: release (size) beside speed"
  "$BENCH/engine-instructions.sh" release speed --out "$RESULTS/engine-instructions.md"
fi

if wants writers; then
  log "contended writers in separate processes: the DynamoDB stand-in, then moto"
  if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    cargo build --release --locked -p dynamodb-emulator --bin dynamodb-emulator
  fi
  EMULATOR_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN/dynamodb-emulator" --host 127.0.0.1 --port "$EMULATOR_PORT" >"$RESULTS/emulator.log" 2>&1 &
  EMULATOR_PID=$!
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$EMULATOR_PORT") 2>/dev/null && break
    sleep 0.1
  done
  "$BIN/writers" --endpoint "http://127.0.0.1:$EMULATOR_PORT" --seconds 10 \
    --label "The DynamoDB stand-in (dynamodb-emulator, default latency 5 ms + up to 2 ms)" \
    --out "$RESULTS/writers-emulator.md" || { kill "$EMULATOR_PID"; exit 1; }
  kill "$EMULATOR_PID" 2>/dev/null || true
  "$BIN/writers" --endpoint "$DYNAMODB_ENDPOINT" --seconds 10 --label "moto (moto_bench.py)" \
    --out "$RESULTS/writers-processes-moto.md"
fi

if wants cost; then
  log "cost per operation and memory sizing on the DynamoDB stand-in (COST.md)"
  if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    cargo build --release --locked -p dynamodb-emulator --bin dynamodb-emulator
  fi
  EMULATOR_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN/dynamodb-emulator" --host 127.0.0.1 --port "$EMULATOR_PORT" >"$RESULTS/cost-emulator.log" 2>&1 &
  EMULATOR_PID=$!
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$EMULATOR_PORT") 2>/dev/null && break
    sleep 0.1
  done
  # Its own results folder: the section goes to COST.md, not BENCHMARKS.md.
  mkdir -p "$RESULTS/cost"
  "$BIN/cost" --endpoint "http://127.0.0.1:$EMULATOR_PORT" \
    --prices functions/benchmarks/prices.json --runs 30 --big-runs 5 --clients 4 \
    --out "$RESULTS/cost/cost.md" || { kill "$EMULATOR_PID"; exit 1; }
  kill "$EMULATOR_PID" 2>/dev/null || true
  python3 "$BENCH/splice.py" "${COST_DOC:-$ROOT/COST.md}" "$RESULTS/cost" ""
fi

log "writing BENCHMARKS.md"
# The run time is recorded for a run of every default step only.
duration=""
if [[ $ALL_STEPS == 1 ]]; then
  duration="$(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
fi
python3 "$BENCH/splice.py" "${BENCH_DOC:-$ROOT/BENCHMARKS.md}" "$RESULTS" "$duration"
log "done in $(( SECONDS - started )) s"
