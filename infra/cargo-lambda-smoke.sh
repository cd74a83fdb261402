#!/usr/bin/env bash
# Runs the real Lambda binaries under `cargo lambda watch`, against moto on 127.0.0.1:
#   spaces  createSpace, spaceExists         (function URL /lambda-url/spaces/...)
#   ws-connect                                 (Invoke API, a $connect event)
#   push    one increment, which pokes the connection through WEBSOCKET_ENDPOINT
#   pull    the count is the pushed amount
#   ws-default, ws-disconnect                  (Invoke API)
# then stops everything it started. The table is created from the template's own Table
# resource (infra/create-table.py). Nothing talks to AWS.
#
#   infra/cargo-lambda-smoke.sh
#   DYNAMODB_ENDPOINT=http://127.0.0.1:5000 infra/cargo-lambda-smoke.sh   (use a running moto)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/tools.sh
source infra/tools.sh

ensure_cargo_lambda
ensure_moto

work=$(mktemp -d)
moto_pid=
watch_pid=
cleanup() {
  local status=$?
  # cargo lambda watch runs in its own process group (setsid): stop the group, which
  # holds the function processes it started.
  if [ -n "$watch_pid" ]; then
    kill -TERM -- "-$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "--- cargo lambda watch (last lines)" >&2
    tail -n 40 "$work/watch.log" >&2 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "smoke: FAILED: $*" >&2
  exit 1
}

# DynamoDB: a moto of our own unless DYNAMODB_ENDPOINT names one.
endpoint=${DYNAMODB_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  moto_port=$(free_port)
  "$MOTO_SERVER" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
  moto_pid=$!
  wait_for_port "$moto_port" 30 || fail "moto_server did not start"
  endpoint="http://127.0.0.1:$moto_port"
fi
table="smoke-$(date +%s)-$$"
"$MOTO_PYTHON" infra/create-table.py "$endpoint" "$table"

# Build the binaries first (debug, as `cargo lambda watch` runs them) so that the first
# invocation does not wait for a compilation.
started=$(date +%s)
cargo build --quiet -p lambda-handlers --bins
echo "debug build of the binaries: $(($(date +%s) - started)) s"

port=$(free_port)
fn_env="TABLE_NAME=$table,DYNAMODB_ENDPOINT=$endpoint,WEBSOCKET_ENDPOINT=$endpoint"
fn_env+=",AWS_ACCESS_KEY_ID=local,AWS_SECRET_ACCESS_KEY=local,AWS_REGION=us-east-1,RUST_LOG=info"
setsid cargo lambda watch \
  --invoke-address 127.0.0.1 --invoke-port "$port" \
  --package lambda-handlers --ignore-changes \
  --env-vars "$fn_env" \
  >"$work/watch.log" 2>&1 &
watch_pid=$!
wait_for_port "$port" 120 || fail "cargo lambda watch did not listen on $port"
base="http://127.0.0.1:$port"
echo "cargo lambda watch on $base, DynamoDB $endpoint, table $table"

# post URL BODY: prints the response body; fails on a non-2xx status.
post() {
  curl --silent --show-error --fail-with-body --max-time 300 \
    -H 'content-type: application/json' --data "$2" "$1"
}

# json EXPRESSION: evaluates a Python expression on the JSON of stdin, bound to `j`.
json() {
  python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# ws_event ROUTE CONNECTION [SPACE]: a WebSocket API proxy event.
ws_event() {
  python3 - "$@" <<'PY'
import json, sys
route, connection = sys.argv[1], sys.argv[2]
space = sys.argv[3] if len(sys.argv) > 3 else None
kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
event = {
    "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
    "requestContext": {
        "routeKey": route, "eventType": kind, "messageDirection": "IN", "stage": "live",
        "connectedAt": 1795766400000, "requestTimeEpoch": 1795766400000, "requestId": "smoke",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "connectionId": connection, "apiId": "abc123",
    },
    "isBase64Encoded": False,
}
if space:
    event["queryStringParameters"] = {"spaceID": space}
if kind == "MESSAGE":
    event["body"] = json.dumps({"action": "ping"})
print(json.dumps(event))
PY
}

invoke() {
  post "$base/2015-03-31/functions/$1/invocations" "$2"
}

space=$(post "$base/lambda-url/spaces/api/replicache/createSpace" '{}' | json 'j["spaceID"]')
[ -n "$space" ] || fail "createSpace returned no spaceID"
echo "spaces: createSpace -> $space"
exists=$(post "$base/lambda-url/spaces/api/replicache/spaceExists" "{\"spaceID\":\"$space\"}" | json 'j["spaceExists"]')
[ "$exists" = "True" ] || fail "spaceExists answered $exists"
echo "spaces: spaceExists -> true"

status=$(invoke ws-connect "$(ws_event '$connect' smoke-connection "$space")" | json 'j["statusCode"]')
[ "$status" = "200" ] || fail "ws-connect answered $status"
echo "ws-connect: 200"

push_body='{"pushVersion":1,"clientGroupID":"smoke-group","profileID":"p","schemaVersion":"",
  "mutations":[{"clientID":"smoke-client","id":1,"name":"increment","args":5,"timestamp":1}]}'
pushed=$(post "$base/lambda-url/push/api/replicache/push?spaceID=$space" "$push_body")
[ "$pushed" = "{}" ] || fail "push answered $pushed"
echo "push: one increment of 5 -> {}"

pull_body='{"pullVersion":1,"clientGroupID":"smoke-group","profileID":"p","schemaVersion":"","cookie":null}'
pulled=$(post "$base/lambda-url/pull/api/replicache/pull?spaceID=$space" "$pull_body")
count=$(json '[op["value"] for op in j["patch"] if op.get("key") == "count"][0]' <<<"$pulled")
cookie=$(json 'j["cookie"]' <<<"$pulled")
lmid=$(json 'j["lastMutationIDChanges"]["smoke-client"]' <<<"$pulled")
[ "$count" = "5" ] && [ "$cookie" = "1" ] && [ "$lmid" = "1" ] || fail "pull answered $pulled"
echo "pull: count 5, cookie 1, lastMutationID 1"

# Each function answers only its own routes.
code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 60 \
  -H 'content-type: application/json' --data "$pull_body" \
  "$base/lambda-url/pull/api/replicache/push?spaceID=$space")
[ "$code" = "404" ] || fail "the pull function answered a push with $code"

# The push poked the connection through the Management API endpoint (moto accepts any).
grep -q '"delivered":1' "$work/watch.log" || fail "push did not poke the connection"
echo "push: poked 1 connection through WEBSOCKET_ENDPOINT"

status=$(invoke ws-default "$(ws_event '$default' smoke-connection)" | json 'j["statusCode"]')
[ "$status" = "200" ] || fail "ws-default answered $status"
status=$(invoke ws-disconnect "$(ws_event '$disconnect' smoke-connection)" | json 'j["statusCode"]')
[ "$status" = "200" ] || fail "ws-disconnect answered $status"
echo "ws-default: 200; ws-disconnect: 200"
echo "smoke: ok"
