#!/usr/bin/env bash
# Property-based API test of the shipped OpenAPI document (openapi/latchkey.yaml) against
# the real server: schemathesis generates valid and invalid requests for every JSON
# endpoint and fails on any 5xx, any status code, content type or response body the
# document does not describe (RFC 6749 §5.2 error shapes included).
# SECURITY-TESTS: BI-09
#
# Starts target/debug/latchkey serve (built if missing) on a free loopback port with a
# throwaway SQLite database, registers a confidential client and a user with the CLI,
# then runs a bounded schemathesis (pinned, in a venv under target/) with the client's
# HTTP Basic credentials and a user's access token. Needs python3 with venv and, the
# first time, PyPI. Exits non-zero on any failure; the server is always stopped.
# "Failed to extract data from response" under "Stateful tests" is not a failure: a link
# of the document names a token that the response lacks (client_credentials grants have
# no refresh token).
#
#   tests/schemathesis.sh                 # the bounded run (about 20 s on 2 cores, 45 s
#                                         # when it first installs schemathesis)
#   ST_MAX_EXAMPLES=200 ST_SEED=42 tests/schemathesis.sh   # longer, or reproduce a seed
#   ST_SERVER_LOG=/tmp/lk.log tests/schemathesis.sh       # keep the server's JSON log
#   ST_EXTRA_ARGS="--report har --report-dir /tmp/st" tests/schemathesis.sh   # more options
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ST_VERSION=4.32.5
VENV=$ROOT/target/schemathesis-venv
BIN=$ROOT/target/debug/latchkey
SPEC=$ROOT/openapi/latchkey.yaml
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-50}
# Hard limit on the schemathesis run itself, in seconds.
TIME_LIMIT=${ST_TIME_LIMIT:-150}
# Server errors, status codes, content types, bodies and headers against the document
# (content types and bodies through hooks.py, below), and that a protected operation
# refuses requests without its credentials (ignored_auth).
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance_rfc6750,response_schema_conformance_rfc6750,response_headers_conformance,ignored_auth

say() { printf '== %s\n' "$*"; }

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $ST_VERSION" ]; then
  say "installing schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
PY=$VENV/bin/python

if [ ! -x "$BIN" ]; then
  say "building the latchkey binary"
  cargo build --bin latchkey
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${ST_SERVER_LOG:-}" ] && [ -f "$TMP/server.log" ]; then cp "$TMP/server.log" "$ST_SERVER_LOG"; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export LATCHKEY_DATABASE_URL=sqlite://$TMP/lk.db
export LATCHKEY_LISTEN=127.0.0.1:$PORT
export LATCHKEY_ISSUER=$BASE
export LATCHKEY_LOG_FORMAT=json

# The user and password are the examples of POST /token in the document, so that the
# examples phase gets real tokens (and the stateful phase can refresh, introspect and
# revoke them).
USERNAME=alice
PASSWORD=example-password-1

say "client and user (latchkey CLI, $LATCHKEY_DATABASE_URL)"
CLIENT_JSON=$("$BIN" client create --name schemathesis \
  --grant-type client_credentials --grant-type password --grant-type refresh_token \
  --scope "openid profile email offline_access api:read" --json)
LK_CLIENT_ID=$(printf '%s' "$CLIENT_JSON" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')
LK_CLIENT_SECRET=$(printf '%s' "$CLIENT_JSON" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])')
export LK_CLIENT_ID LK_CLIENT_SECRET
printf '%s\n' "$PASSWORD" | "$BIN" user create --username "$USERNAME" --email alice@example.com \
  --email-verified --name "Alice Example" --given-name Alice --family-name Example \
  --password-stdin >/dev/null

say "server on $BASE"
"$BIN" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
ready=
for _ in $(seq 1 100); do
  if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$BASE/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "FAILED: the server did not become ready" >&2
  cat "$TMP/server.log" >&2
  exit 1
fi

# Tokens from password grants: a user's access token for /userinfo (openid and the claim
# scopes), and two refresh tokens that the generated requests sometimes carry, so that
# refresh, refresh-token introspection and revocation are reached too.
mint() {
  SCOPE=$1 FIELD=$2 USERNAME=$USERNAME PASSWORD=$PASSWORD "$PY" - "$BASE/token" <<'EOF'
import base64, json, os, sys, urllib.parse, urllib.request
from urllib.parse import quote_plus
basic = base64.b64encode(
    f"{quote_plus(os.environ['LK_CLIENT_ID'])}:{quote_plus(os.environ['LK_CLIENT_SECRET'])}".encode()
).decode()
body = urllib.parse.urlencode({
    "grant_type": "password",
    "username": os.environ["USERNAME"],
    "password": os.environ["PASSWORD"],
    "scope": os.environ["SCOPE"],
}).encode()
req = urllib.request.Request(sys.argv[1], data=body, headers={"Authorization": "Basic " + basic})
print(json.load(urllib.request.urlopen(req, timeout=10))[os.environ["FIELD"]])
EOF
}
LK_BEARER=$(mint "openid profile email" access_token)
export LK_BEARER
RT1=$(mint "openid offline_access" refresh_token)
RT2=$(mint "offline_access" refresh_token)

# RFC 6750 §3.1: a request to /userinfo with no bearer token at all (no Authorization
# header, or another scheme's credentials) gets only the challenge,
# `WWW-Authenticate: Bearer realm="latchkey"`, and an empty body, which a media-type map
# in OpenAPI cannot express. These two checks are schemathesis' own content-type and
# response-schema checks, skipping exactly that answer and nothing else.
cat >"$TMP/hooks.py" <<'EOF'
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)


def bare_bearer_challenge(response, case):
    auth = [
        str(value)
        for name, value in response.request.headers.items()
        if name.lower() == "authorization"
    ]
    return (
        case.path == "/userinfo"
        and response.status_code == 401
        and not response.content
        and response.headers.get("www-authenticate") == ['Bearer realm="latchkey"']
        and not any(a.lower().startswith("bearer") for a in auth)
    )


@schemathesis.check
def content_type_conformance_rfc6750(ctx, response, case):
    if bare_bearer_challenge(response, case):
        return None
    return content_type_conformance(ctx, response, case)


@schemathesis.check
def response_schema_conformance_rfc6750(ctx, response, case):
    if bare_bearer_challenge(response, case):
        return None
    return response_schema_conformance(ctx, response, case)
EOF

# Schemathesis settings shared by both runs; paths are relative to $TMP, where it runs.
# At /token: the user's real name and password, so that password grants succeed, or an
# unknown name, locked after five failures (429; the per-address limit, 50, is never
# reached, since locked attempts do not count); sometimes scopes that yield refresh and ID
# tokens, for the stateful phase to refresh, introspect and revoke; and mostly the real
# client_id (one that differs from the Basic one is a 400).
cat >"$TMP/common.toml" <<EOF
[dictionaries.username]
values = ["$USERNAME", "mallory"]
[dictionaries.password]
values = ["$PASSWORD"]
[dictionaries.scope]
values = ["openid profile email offline_access", "openid offline_access", "offline_access"]
[dictionaries.client_id]
values = ["$LK_CLIENT_ID"]
[dictionaries.refresh_token]
values = ["$RT1", "$RT2"]

[parameters]
"body.username" = { dictionary = "username", probability = 1.0 }
"body.password" = { dictionary = "password", probability = 1.0 }
"body.scope" = { dictionary = "scope", probability = 0.5 }
"body.client_id" = { dictionary = "client_id", probability = 0.9 }
"body.refresh_token" = { dictionary = "refresh_token", probability = 0.5 }
"body.token" = { dictionary = "refresh_token", probability = 0.2 }
EOF
# Run 1, every operation: credentials per security scheme, from the environment.
{
  echo 'hooks = "hooks.py"'
  cat <<'EOF'
[auth.openapi.clientBasic]
username = "${LK_CLIENT_ID}"
password = "${LK_CLIENT_SECRET}"

[auth.openapi.bearer]
bearer = "${LK_BEARER}"
EOF
  cat "$TMP/common.toml"
} >"$TMP/authenticated.toml"
# Run 2, the client-authenticated endpoints without Basic: body credentials, wrong
# secrets, none at all (401 invalid_client and its challenge).
{
  echo 'hooks = "hooks.py"'
  cat "$TMP/common.toml"
} >"$TMP/anonymous.toml"

EXTRA_ARGS=()
if [ -n "${ST_SEED:-}" ]; then EXTRA_ARGS+=(--seed "$ST_SEED"); fi
if [ -n "${ST_EXTRA_ARGS:-}" ]; then read -ra more <<<"$ST_EXTRA_ARGS"; EXTRA_ARGS+=("${more[@]}"); fi

START=$(date +%s)
DEADLINE=$((START + TIME_LIMIT))
status=0
# run_schemathesis CONFIG ARGS...: one bounded run, from the scratch directory so that
# nothing schemathesis writes lands in the work tree; its failure fails the script.
run_schemathesis() {
  local config=$1 left rc=0
  shift
  left=$((DEADLINE - $(date +%s)))
  if [ "$left" -le 0 ]; then
    echo "FAILED: no time left of the ${TIME_LIMIT}s limit for this run" >&2
    status=124
    return
  fi
  (cd "$TMP" && timeout --kill-after=10 "$left" \
    "$VENV/bin/schemathesis" --config-file "$TMP/$config" --no-color run "$SPEC" \
    --url "$BASE" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --request-timeout 15 \
    --generation-database none \
    "$@" "${EXTRA_ARGS[@]}") || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAILED: schemathesis did not finish within the ${TIME_LIMIT}s limit" >&2
  fi
  [ "$rc" -eq 0 ] || status=$rc
}

say "schemathesis $ST_VERSION, run 1 of 2: every operation, with credentials ($MAX_EXAMPLES examples per operation at most)"
run_schemathesis authenticated.toml
say "schemathesis run 2 of 2: /token, /revoke, /introspect without HTTP Basic (mostly 401 by design)"
run_schemathesis anonymous.toml --include-path-regex '^/(token|revoke|introspect)$' \
  --phases examples,coverage,fuzzing --warnings off
say "schemathesis finished in $(($(date +%s) - START))s, exit status $status"

if grep -q '"level":"ERROR"' "$TMP/server.log"; then
  echo "server errors logged:" >&2
  grep '"level":"ERROR"' "$TMP/server.log" | tail -n 20 >&2
  [ "$status" -ne 0 ] || status=1
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "FAILED: the server exited during the run" >&2
  tail -n 20 "$TMP/server.log" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
