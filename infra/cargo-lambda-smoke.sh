#!/usr/bin/env bash
# Runs the real Lambda binaries under `cargo lambda watch`, against moto on 127.0.0.1,
# in AuthMode none (the functions say so loudly in their logs):
#   spaces  createSpace, spaceExists, spaceAccess (function URL /lambda-url/spaces/...)
#   ws-connect                                 (Invoke API, a $connect event)
#   push    one increment, answered without a poke
#   poke    a DynamoDB stream event (the documented shape, KEYS_ONLY) with two
#           modifications of the space item, one of an entry and the space's creation: the
#           connection poked once through WEBSOCKET_ENDPOINT, two records skipped, no
#           failed record
#   pull    the count is the pushed amount, under a cookie signed with the key of the
#           cookie secret; a forged cookie from the future is refused (400), a genuine one
#           moves the space's version past it
#   ws-connect  past MAX_SOCKETS_PER_SPACE (2 here): 429
#   ws-disconnect                              (Invoke API)
#   ws-authorizer  a REQUEST authorizer event without a token: the error "Unauthorized"
#           (API Gateway's 401)
# then stops everything it started. The table is created from the template's own Table
# resource (store-dynamodb's `create-table`), the cookie secret in the same moto as the template's
# generates it (COOKIE_SECRET_ARN, SECRETS_MANAGER_ENDPOINT). Nothing talks to AWS.
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
cargo run --quiet -p store-dynamodb --bin create-table -- "$endpoint" "$table"

# The cookie secret, generated with the template's own GenerateSecretString settings:
# prints its ARN, then its text (a local, throw-away key: it goes to a file, not the log).
"$MOTO_PYTHON" - "$endpoint" "$table-cookie" >"$work/secret" <<'PY'
import sys
import boto3
import yaml

endpoint, name = sys.argv[1], sys.argv[2]
resources = yaml.safe_load(open("infra/template.yaml"))["Resources"]
(generate,) = [
    r["Properties"]["GenerateSecretString"]
    for r in resources.values()
    if r["Type"] == "AWS::SecretsManager::Secret"
]
client = boto3.client(
    "secretsmanager",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
text = client.get_random_password(**generate)["RandomPassword"]
print(client.create_secret(Name=name, SecretString=text)["ARN"])
print(text)
PY
secret_arn=$(sed -n 1p "$work/secret")
secret_text=$(sed -n 2p "$work/secret")
[ -n "$secret_arn" ] && [ ${#secret_text} -ge 32 ] || fail "no cookie secret was created"
echo "cookie secret $secret_arn (${#secret_text} characters)"

# Build the binaries first (debug, as `cargo lambda watch` runs them) so that the first
# invocation does not wait for a compilation.
started=$(date +%s)
cargo build --quiet -p lambda-handlers --bins
echo "debug build of the binaries: $(($(date +%s) - started)) s"

port=$(free_port)
fn_env="TABLE_NAME=$table,DYNAMODB_ENDPOINT=$endpoint,WEBSOCKET_ENDPOINT=$endpoint"
fn_env+=",COOKIE_SECRET_ARN=$secret_arn,SECRETS_MANAGER_ENDPOINT=$endpoint"
fn_env+=",AWS_ACCESS_KEY_ID=local,AWS_SECRET_ACCESS_KEY=local,AWS_REGION=us-east-1,RUST_LOG=info"
fn_env+=",AUTH_MODE=none,MAX_SOCKETS_PER_SPACE=2"
# Only ws-authorizer reads these; its keys are never fetched for a request without a token.
fn_env+=",JWT_ISSUER=https://issuer.example.com,JWT_AUDIENCE=smoke"
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

# sign ORDER: the signature of a cookie of $space at ORDER under the secret's signing key,
# computed independently of the Rust code (HMAC-SHA256, see sync_core::cookie).
sign() {
  python3 - "$secret_text" "$space" "$1" <<'PY'
import base64, hashlib, hmac, struct, sys
keys, space, order = sys.argv[1], sys.argv[2], int(sys.argv[3])
message = b"replicache-sync cookie v1\0" + space.encode() + b"\0" + struct.pack(">Q", order)
tag = hmac.new(keys.split()[0].encode(), message, hashlib.sha256).digest()[:16]
print(base64.urlsafe_b64encode(tag).rstrip(b"=").decode())
PY
}

# pull_with COOKIE: the pull's HTTP status, then its body, on two lines.
pull_with() {
  curl --silent --show-error --max-time 300 --write-out '\n%{http_code}' \
    -H 'content-type: application/json' \
    --data "{\"pullVersion\":1,\"clientGroupID\":\"smoke-group\",\"cookie\":$1}" \
    "$base/lambda-url/pull/api/replicache/pull?spaceID=$space" |
    awk '{ lines[NR] = $0 } END { print lines[NR]; for (i = 1; i < NR; i++) print lines[i] }'
}

space=$(post "$base/lambda-url/spaces/api/replicache/createSpace" '{}' | json 'j["spaceID"]')
[ -n "$space" ] || fail "createSpace returned no spaceID"
echo "spaces: createSpace -> $space"
exists=$(post "$base/lambda-url/spaces/api/replicache/spaceExists" "{\"spaceID\":\"$space\"}" | json 'j["spaceExists"]')
[ "$exists" = "True" ] || fail "spaceExists answered $exists"
echo "spaces: spaceExists -> true"
access=$(post "$base/lambda-url/spaces/api/replicache/spaceAccess?spaceID=$space" '{}')
[ "$(json 'j["owner"] == "" and j["members"] == [] and j["link"] == "open"' <<<"$access")" = "True" ] ||
  fail "spaceAccess answered $access"
echo "spaces: spaceAccess -> anyone with the link (AuthMode none)"
grep -q 'AUTH_MODE is none: NO AUTHENTICATION' "$work/watch.log" ||
  fail "the functions did not warn that AUTH_MODE is none"

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
order=$(json 'j["cookie"]["order"]' <<<"$pulled")
sig=$(json 'j["cookie"]["sig"]' <<<"$pulled")
lmid=$(json 'j["lastMutationIDChanges"]["smoke-client"]' <<<"$pulled")
[ "$count" = "5" ] && [ "$order" = "1" ] && [ "$lmid" = "1" ] || fail "pull answered $pulled"
[ "$sig" = "$(sign 1)" ] || fail "the cookie is not signed with the secret's key: $pulled"
grep -q 'cookie keys loaded' "$work/watch.log" || fail "pull did not load the cookie secret"
echo "pull: count 5, cookie {order 1, signed with the secret's key}, lastMutationID 1"

# Cookies from the future (as after a restore): a forged one is refused and the version
# stays; a genuine one moves the version past it.
answer=$(pull_with 1000)
[ "$(sed -n 1p <<<"$answer")" = "400" ] &&
  [ "$(sed -n 2p <<<"$answer" | json 'j["error"]')" = "InvalidCookie" ] ||
  fail "a forged cookie was answered $answer"
answer=$(pull_with "{\"order\":1000,\"sig\":\"$(sign 1000)\"}")
[ "$(sed -n 1p <<<"$answer")" = "200" ] || fail "a genuine cookie was answered $answer"
order=$(sed -n 2p <<<"$answer" | json 'j["cookie"]["order"]')
sig=$(sed -n 2p <<<"$answer" | json 'j["cookie"]["sig"]')
[ "$order" = "1001" ] && [ "$sig" = "$(sign 1001)" ] || fail "after a genuine cookie: $answer"
echo "pull: forged cookie 1000 -> 400 InvalidCookie; signed cookie 1000 -> version 1001"

# Each function answers only its own routes.
code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 60 \
  -H 'content-type: application/json' --data "$pull_body" \
  "$base/lambda-url/pull/api/replicache/push?spaceID=$space")
[ "$code" = "404" ] || fail "the pull function answered a push with $code"

# The push answered without poking: its commit's stream record does (next).
grep -q '"delivered":' "$work/watch.log" && fail "the push function poked"
echo "push: no poke from the push function"

# poke: what the table's stream hands the poke function after that commit (the template's
# filter lets through changes of space items only, a new space's INSERT among them, which
# the function skips; the entry's record shows that it skips anything else too).
stream_event=$(python3 - "$table" "$space" <<'PY'
import json, sys
table, space = sys.argv[1], sys.argv[2]
def record(n, pk, sk, name="MODIFY"):
    return {
        "eventID": f"{n:032x}", "eventName": name, "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795766400,
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "SequenceNumber": str(100 + n), "SizeBytes": 64, "StreamViewType": "KEYS_ONLY",
        },
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-27T08:00:00.000",
    }
print(json.dumps({"Records": [
    record(1, f"space#{space}", "meta", "INSERT"),
    record(2, f"space#{space}", "meta"),
    record(3, f"space#{space}", "e#count"),
    record(4, f"space#{space}", "meta"),
]}))
PY
)
answer=$(invoke poke "$stream_event")
[ "$(json 'j == {"batchItemFailures": []}' <<<"$answer")" = "True" ] ||
  fail "poke answered $answer"
grep -q '"delivered":1' "$work/watch.log" || fail "poke did not poke the connection"
grep -q '"records":4' "$work/watch.log" && grep -q '"skipped":2' "$work/watch.log" ||
  fail "poke did not log its batch"
echo "poke: 4 stream records -> 1 space, its connection poked through WEBSOCKET_ENDPOINT, no failed record"

# The cap of sockets per space (MAX_SOCKETS_PER_SPACE=2): a second socket, then a third
# is refused with 429 and stored nowhere.
status=$(invoke ws-connect "$(ws_event '$connect' smoke-2 "$space")" | json 'j["statusCode"]')
[ "$status" = "200" ] || fail "a second socket was answered $status"
status=$(invoke ws-connect "$(ws_event '$connect' smoke-3 "$space")" | json 'j["statusCode"]')
[ "$status" = "429" ] || fail "a third socket (past the cap of 2) was answered $status"
echo "ws-connect: a third socket on the space -> 429"

status=$(invoke ws-disconnect "$(ws_event '$disconnect' smoke-connection)" | json 'j["statusCode"]')
[ "$status" = "200" ] || fail "ws-disconnect answered $status"
echo "ws-disconnect: 200"

# The $connect authorizer (deployed in AuthMode jwt): a REQUEST event without a token is
# answered with the error "Unauthorized", which API Gateway turns into 401.
authorizer_event='{"type":"REQUEST","methodArn":"arn:aws:execute-api:us-east-1:123456789012:abc123/live/$connect",
  "headers":{"Host":"abc123.execute-api.us-east-1.amazonaws.com"},"queryStringParameters":{"spaceID":"x"},
  "requestContext":{"routeKey":"$connect","eventType":"CONNECT","stage":"live","connectionId":"c1","apiId":"abc123"}}'
answer=$(curl --silent --show-error --max-time 300 -H 'content-type: application/json' \
  --data "$authorizer_event" "$base/2015-03-31/functions/ws-authorizer/invocations")
[ "$(json 'j.get("errorMessage")' <<<"$answer")" = "Unauthorized" ] ||
  fail "ws-authorizer answered a request without a token with $answer"
echo "ws-authorizer: no token -> Unauthorized"
echo "smoke: ok"
