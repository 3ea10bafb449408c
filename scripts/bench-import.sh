#!/usr/bin/env bash
# Import benchmark (docs/benchmarks.md, "Imports"): N password-encrypted PSKC keys written by the
# import crate's own writer, imported end to end by the release binary into a fresh SQLite
# installation and (with PG_URL) a fresh PostgreSQL database, REPS times each; prints wall
# time, tokens per second and peak RSS of every run and the median.
#
#   cargo build --release --bin tessera -p tessera-import --example write_pskc
#   scripts/bench-import.sh [N=100000] [REPS=3]
#   PG_URL=postgres://postgres@127.0.0.1:5432 scripts/bench-import.sh
set -euo pipefail
N=${1:-100000}
REPS=${2:-3}
BIN=${BIN:-target/release/tessera}
WRITER=${WRITER:-target/release/examples/write_pskc}
WORK=$(mktemp -d /tmp/tessera-import-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PASSWORD="bench password"
FILE="$WORK/keys.pskc"
echo "$PASSWORD" | "$WRITER" "$N" "$FILE" 100000
echo "file: $N keys, $(du -h "$FILE" | cut -f1), PBKDF2-HMAC-SHA256 100,000 iterations, AES-256-CBC, HMAC-SHA256"

run() { # $1: label, $2...: extra env
  local label=$1; shift
  local results=()
  for i in $(seq 1 "$REPS"); do
    local dir="$WORK/$label-$i"
    mkdir -p "$dir"
    local envs=("$@")
    if [ "$label" = postgres ]; then
      local db="import_bench_$$_$i"
      psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
      envs+=("TESSERA_DATABASE__URL=$PG_URL/$db")
    fi
    env "${envs[@]}" "$BIN" --data-dir "$dir" migrate >/dev/null 2>&1
    local out
    out=$( { echo "$PASSWORD" | env "${envs[@]}" /usr/bin/time -f "TIME %e RSS %M" \
      "$BIN" --data-dir "$dir" import pskc "$FILE" --password-stdin >/dev/null; } 2>&1 | grep '^TIME')
    local secs rss
    secs=$(echo "$out" | awk '{print $2}')
    rss=$(echo "$out" | awk '{print $4}')
    local rate
    rate=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%d", n / s }')
    echo "$label run $i: ${secs} s, ${rate} tokens/s, peak RSS $((rss / 1024)) MB"
    results+=("$secs $rate $rss")
    if [ "$label" = postgres ]; then
      psql "$PG_URL/postgres" -qc "DROP DATABASE $db" >/dev/null
    fi
  done
  printf '%s\n' "${results[@]}" | sort -n | awk -v l="$label" -v r="$REPS" \
    'NR == int((r + 1) / 2) { printf "%s median: %s s, %s tokens/s, peak RSS %d MB\n", l, $1, $2, $3 / 1024 }'
}

run sqlite
if [ -n "${PG_URL:-}" ]; then
  run postgres
fi
