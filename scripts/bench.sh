#!/usr/bin/env bash
# Load benchmark of POST /api/v1/validate with tessera-load, on SQLite and (if reachable) on the
# local PostgreSQL. Builds release binaries, starts a fresh server per database on 127.0.0.1:8181,
# prepares 1000 HOTP + 1000 TOTP users, runs each case, and appends one JSON line per run to
# $OUT (default /tmp/tessera-bench/results.jsonl). Everything stays on loopback and every run
# ends by itself (--duration).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
USERS=${USERS:-1000}
WORK=${WORK:-/tmp/tessera-bench}
OUT=${OUT:-$WORK/results.jsonl}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
# Which runs: "case concurrency" pairs separated by commas, and which databases. "mixed N" runs
# hotp_valid and password_hotp_valid at N connections each at the same time, the second on a
# user set of its own (prefix p), to show that password checks do not starve OTP-only requests.
CASES=${CASES:-hotp_valid 8,hotp_valid 1,hotp_wrong 8,totp_valid 8,password_hotp_valid 8,duplicate 50,mixed 8}
DBS=${DBS:-sqlite postgres}
mkdir -p "$WORK"
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }
cargo build --release -p tessera-server -p tessera-load
BIN=target/release
SERVER=${SERVER:-$BIN/tessera}  # another build of the server, e.g. one with symbols for perf
export BENCH_PW='bench admin password'

# Both cases at once against one server; one JSON line each, marked "mixed": true.
run_mixed() {
  local dir=$1 label=$2 pid=$3 conns=$4
  if [ ! -f "$dir/seeds-p.json" ]; then
    $BIN/tessera-load prepare --url http://127.0.0.1:8181 --admin-user benchadmin \
      --admin-password-env BENCH_PW --users 100 --prefix p --out "$dir/seeds-p.json" --with-password
  fi
  for seeds in seeds seeds-p; do
    $BIN/tessera-load unlock --seeds "$dir/$seeds.json" --admin-user benchadmin --admin-password-env BENCH_PW >/dev/null
  done
  $BIN/tessera-load run --seeds "$dir/seeds-p.json" --case password_hotp_valid --concurrency "$conns" \
    --duration "$DURATION" --server-pid "$pid" ${TOOL_ARGS:-} --json >"$dir/mixed-password.json" &
  local password_run=$!
  $BIN/tessera-load run --seeds "$dir/seeds.json" --case hotp_valid --concurrency "$conns" \
    --duration "$DURATION" --server-pid "$pid" ${TOOL_ARGS:-} --json >"$dir/mixed-otp.json"
  wait $password_run
  cat "$dir/mixed-otp.json" "$dir/mixed-password.json" |
    jq -c --arg db "$label" '. + {db: $db, mixed: true}' | tee -a "$OUT"
}

run_db() {
  local label=$1 url=$2 dir="$WORK/$1"
  rm -rf "$dir"; mkdir -p "$dir"
  # The load tool logs in as an admin on the password alone (prepare, unlock): the benchmark
  # measures validations, not admin logins, so its server lets that admin in without a token.
  local env=(TESSERA_LOG=warn TESSERA_AUTH__ADMIN_SECOND_FACTOR=false)
  [ -n "$url" ] && env+=(TESSERA_DATABASE__URL="$url")
  printf '%s\n' "$BENCH_PW" | env "${env[@]}" $SERVER --data-dir "$dir/data" user add benchadmin --admin --password-stdin >/dev/null
  env "${env[@]}" $SERVER --data-dir "$dir/data" serve --listen 127.0.0.1:8181 >"$dir/serve.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 50); do curl -sf 127.0.0.1:8181/readyz >/dev/null && break; sleep 0.2; done
  $BIN/tessera-load prepare --url http://127.0.0.1:8181 --admin-user benchadmin \
    --admin-password-env BENCH_PW --users "$USERS" --prefix b --out "$dir/seeds.json" --with-password
  local specs
  IFS=, read -ra specs <<<"$CASES"
  for spec in "${specs[@]}"; do
    set -- $spec
    if [ "$1" = mixed ]; then
      run_mixed "$dir" "$label" "$pid" "$2"
      continue
    fi
    local extra=(--concurrency "$2")
    [ "$1" = duplicate ] && extra=(--parallel "$2" --tokens 50)
    # Each TOTP token has at most two codes to give per 30 s step, all used within the first
    # moments: a warm-up would use them up and leave the measured seconds empty.
    [ "$1" = totp_valid ] && extra+=(--warmup 0)
    $BIN/tessera-load unlock --seeds "$dir/seeds.json" --admin-user benchadmin --admin-password-env BENCH_PW >/dev/null
    $BIN/tessera-load run --seeds "$dir/seeds.json" --case "$1" "${extra[@]}" --duration "$DURATION" \
      --server-pid "$pid" ${TOOL_ARGS:-} --json | jq -c --arg db "$label" '. + {db: $db}' | tee -a "$OUT"
  done
  kill $pid; wait $pid 2>/dev/null || true
}

[[ " $DBS " == *" sqlite "* ]] && run_db sqlite ""
if [[ " $DBS " == *" postgres "* ]] && pg_isready -h 127.0.0.1 -p 5432 -q; then
  db="tessera_bench_$(date +%s)"
  psql "$PG_URL/test" -qc "CREATE DATABASE $db"
  run_db postgres "$PG_URL/$db"
  psql "$PG_URL/test" -qc "DROP DATABASE $db" || true
fi
echo "results in $OUT"
