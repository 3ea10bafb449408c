#!/usr/bin/env bash
# Load benchmark of POST /api/v1/validate on SQLite and (if reachable) on the local PostgreSQL,
# with tessera-load (closed loop and open loop) and with wrk, the tool that measured privacyIDEA.
# Builds the release binaries, starts a fresh server per database on 127.0.0.1:8181, prepares
# 1000 HOTP + 1000 TOTP users, runs each case REPS times on a quiet machine, appends one JSON
# line per clean run to $OUT (default /tmp/tessera-bench/results.jsonl), and prints the median
# and the range of each case. Everything stays on loopback and every run ends by itself.
#
# The machine may be shared. Every run goes through `tessera-load guard`, which waits until other
# processes have left the machine alone for 2 s, watches them (and the hypervisor's steal time)
# every second during the run, stops a run that is disturbed for 2 s in a row, and calls a
# finished run clean only if other processes used at most 15 % of one core and steal at most 5 %
# on average. A run that is not clean is written to $WORK/disturbed.jsonl and repeated, at most
# MAX_TRIES times. (The thresholds are the privacyIDEA anchor's; GUARD_ARGS changes them.)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
REPS=${REPS:-3}
USERS=${USERS:-1000}
WORK=${WORK:-/tmp/tessera-bench}
OUT=${OUT:-$WORK/results.jsonl}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-8181}
MAX_TRIES=${MAX_TRIES:-6}
GUARD_ARGS=${GUARD_ARGS:-}
# Which runs, separated by commas:
#   "CASE N"          tessera-load, closed loop, N connections (CASE as in docs/load-tool.md)
#   "CASE N @RATE"    tessera-load, open loop at RATE requests per second on N connections
#   "wrk N"           wrk -t1 -cN with scripts/wrk-validate.lua: valid HOTP codes, each once
#   "mixed N"         hotp_valid and password_hotp_valid at N connections each at the same time,
#                     the second on a user set of its own (prefix p), to show that password
#                     checks do not starve OTP-only requests
CASES=${CASES:-hotp_valid 8,hotp_valid 32,wrk 8,hotp_valid 8 @10000,hotp_valid 1,hotp_wrong 8,totp_valid 8,password_hotp_valid 8,duplicate 50,mixed 8}
DBS=${DBS:-sqlite postgres}
# NODES=2 (PostgreSQL only): a second server on PORT+1 on the same database and key file; every
# "hotp_valid N" case then runs two tessera-load at once, N/2 connections to each node on users
# of its own, one JSON line per node (marked "node": "a"/"b") and one with the sum ("node": "a+b").
NODES=${NODES:-1}
mkdir -p "$WORK"
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need jq jq
need wrk wrk
need curl curl
cargo build --release
BIN=target/release
LOAD=$BIN/tessera-load
SERVER=${SERVER:-$BIN/tessera}  # another build of the server, e.g. one with symbols for perf
export BENCH_PW='bench admin password'
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
URL=http://127.0.0.1:$PORT

# guarded LABEL OUTFILE COMMAND...: runs COMMAND under the guard until a run is clean (at most
# MAX_TRIES times); its stdout goes to OUTFILE, the verdict to OUTFILE.verdict. Returns 1 if no
# run was clean.
guarded() {
  local label=$1 out=$2; shift 2
  local try
  for try in $(seq 1 "$MAX_TRIES"); do
    local rc=0
    $LOAD guard --server-pid "$SERVER_PID" ${WATCH_NAMES:-} $GUARD_ARGS --verdict "$out.verdict" \
      -- "$@" >"$out" || rc=$?
    if [ "$rc" = 0 ] && [ "$(jq -r .clean "$out.verdict")" = true ]; then
      return 0
    fi
    jq -c --arg label "$label" --arg run "$RUN_ID" --argjson try "$try" --argjson rc "$rc" \
      '. + {label: $label, run: $run, try: $try, exit: $rc}' "$out.verdict" | tee -a "$WORK/disturbed.jsonl" >&2
    # A disturbed HOTP run used its codes all the same: the seed file says so (tessera-load
    # writes it back; wrk's lines are settled by the caller even when the run is repeated).
    [ -n "${AFTER_TRY:-}" ] && $AFTER_TRY
  done
  echo "$label: no clean run in $MAX_TRIES tries; the machine is too busy to measure" >&2
  return 1
}

# record DB REP OUTFILE: the run's JSON plus the database, repetition and the guard's verdict.
record() {
  jq -c --arg db "$1" --argjson rep "$2" --arg run "$RUN_ID" --slurpfile v "$3.verdict" \
    '. + {db: $db, rep: $rep, run: $run, guard: $v[0]}' "$3" | tee -a "$OUT"
}

unlock_all() {
  local seeds
  for seeds in "$@"; do
    $LOAD unlock --seeds "$seeds" --admin-user benchadmin --admin-password-env BENCH_PW >/dev/null
  done
}

# One wrk run: bodies for more requests than the server can answer in the duration, wrk, then
# the seed file moved past what wrk sent. Not many more: with a lines file of 960,000 lines wrk
# paused once per run for about 300 ms (max 280-370 ms and, through wrk's correction, p99
# 80-170 ms, while the server's commit log showed nothing above 15 ms and tessera-load's max
# stayed below 26 ms); with 576,000-600,000 lines it did not (docs/benchmarks.md).
WRK_LINES_PER_SECOND=${WRK_LINES_PER_SECOND:-36000}
run_wrk() {
  local dir=$1 label=$2 conns=$3 rep=$4
  local lines="$dir/wrk-lines.txt" raw="$dir/wrk.out"
  TESSERA_WRK_KEY=$(jq -r .apps.otp_only.api_key "$dir/seeds.json")
  export TESSERA_WRK_KEY
  settle_wrk() {
    local sent
    sent=$(sed -n 's/^RESULT //p' "$raw" | jq -r '.sent // 0' 2>/dev/null || echo 0)
    # An aborted run printed nothing: every line may have been sent.
    [ -z "$sent" ] || [ "$sent" = 0 ] && sent=$(wc -l <"$lines")
    $LOAD lines settle --seeds "$dir/seeds.json" --sent "$sent"
    $LOAD lines write --seeds "$dir/seeds.json" --out "$lines" --count $((WRK_LINES_PER_SECOND * (DURATION + 1)))
  }
  $LOAD lines write --seeds "$dir/seeds.json" --out "$lines" --count $((WRK_LINES_PER_SECOND * (DURATION + 1)))
  AFTER_TRY=settle_wrk guarded "$label wrk $conns" "$raw" \
    wrk -t1 -c"$conns" -d"${DURATION}s" --latency --timeout 10s -s scripts/wrk-validate.lua "$URL" -- "$lines"
  local sent
  sent=$(sed -n 's/^RESULT //p' "$raw" | jq -r .sent)
  $LOAD lines settle --seeds "$dir/seeds.json" --sent "$sent"
  rm -f "$lines"
  # In the shape of tessera-load's report. wrk's latencies are corrected for coordinated
  # omission (see scripts/wrk-validate.lua), from the send otherwise.
  sed -n 's/^RESULT //p' "$raw" | jq -c --argjson c "$conns" --arg url "$URL" '{
      case: "hotp_valid", tool: "wrk", mode: "closed, wrk-corrected", url: $url, concurrency: $c,
      threads: 1, elapsed_s: (.duration_us / 1e6), requests: .requests,
      rps: ((.requests / (.duration_us / 1e6)) * 10 | round / 10),
      accepted: .accepted, rejected: .rejected, http_errors: .non200,
      errors: {connect: .err_connect, read: .err_read, write: .err_write, timeout: .err_timeout},
      p50_ms: (.p50_us / 1000), p90_ms: (.p90_us / 1000), p99_ms: (.p99_us / 1000),
      p999_ms: (.p999_us / 1000), max_ms: (.max_us / 1000), mean_ms: (.mean_us / 1000),
      wrapped: .wrapped}' >"$raw.json"
  cp "$raw.verdict" "$raw.json.verdict"
  record "$label" "$rep" "$raw.json"
}

# Both cases at once against one server; one JSON line each, marked "mixed": true.
run_mixed() {
  local dir=$1 label=$2 conns=$3 rep=$4
  if [ ! -f "$dir/seeds-p.json" ]; then
    $LOAD prepare --url "$URL" --admin-user benchadmin \
      --admin-password-env BENCH_PW --users 100 --prefix p --out "$dir/seeds-p.json" --with-password
  fi
  unlock_all "$dir/seeds.json" "$dir/seeds-p.json"
  # The guard's Ctrl-C (a disturbed run) is passed on to both tools.
  local run="$LOAD run --duration $DURATION --server-pid $SERVER_PID --concurrency $conns ${TOOL_ARGS:-} --json"
  local mixed="$run --seeds $dir/seeds-p.json --case password_hotp_valid >$dir/mixed-password.json & a=\$!
    $run --seeds $dir/seeds.json --case hotp_valid >$dir/mixed-otp.json & b=\$!
    trap 'kill -INT \$a \$b' INT; wait \$a; wait \$b"
  guarded "$label mixed $conns" "$dir/mixed.out" bash -c "$mixed"
  for part in otp password; do
    cp "$dir/mixed.out.verdict" "$dir/mixed-$part.json.verdict"
    jq -c '. + {mixed: true, tool: "tessera-load"}' "$dir/mixed-$part.json" >"$dir/mixed-$part.tmp" && mv "$dir/mixed-$part.tmp" "$dir/mixed-$part.json"
    record "$label" "$rep" "$dir/mixed-$part.json"
  done
}

# Both nodes at once, half the connections each; one JSON line per node and their sum.
run_pair() {
  local dir=$1 label=$2 conns=$3 rep=$4 half=$(( $3 / 2 ))
  unlock_all "$dir/seeds.json" "$dir/seeds-n2.json"
  local run="$LOAD run --duration $DURATION --concurrency $half --case hotp_valid ${TOOL_ARGS:-} --json"
  local pair="$run --seeds $dir/seeds.json --server-pid $SERVER_PID >$dir/pair-a.json & a=\$!
    $run --seeds $dir/seeds-n2.json --server-pid $SERVER2_PID >$dir/pair-b.json & b=\$!
    trap 'kill -INT \$a \$b' INT; wait \$a; wait \$b"
  WATCH_NAMES="$WATCH_NAMES --server-pid $SERVER2_PID" guarded "$label 2 nodes $conns" "$dir/pair.out" bash -c "$pair" || return 0
  for part in a b; do
    cp "$dir/pair.out.verdict" "$dir/pair-$part.json.verdict"
    jq -c --arg n "$part" '. + {node: $n, nodes: 2, tool: "tessera-load"}' "$dir/pair-$part.json" >"$dir/pair-$part.tmp" && mv "$dir/pair-$part.tmp" "$dir/pair-$part.json"
    record "$label" "$rep" "$dir/pair-$part.json"
  done
  jq -cs --argjson c "$conns" '{case: "hotp_valid", tool: "tessera-load", node: "a+b", nodes: 2,
      concurrency: $c, rps: (map(.rps) | add), requests: (map(.requests) | add),
      accepted: (map(.accepted // 0) | add), p50_ms: (map(.p50_ms) | max),
      p99_ms: (map(.p99_ms) | max), max_ms: (map(.max_ms) | max)}' \
    "$dir/pair-a.json" "$dir/pair-b.json" >"$dir/pair-sum.json"
  cp "$dir/pair.out.verdict" "$dir/pair-sum.json.verdict"
  record "$label" "$rep" "$dir/pair-sum.json"
}

run_db() {
  local label=$1 url=$2 dir="$WORK/$1"
  rm -rf "$dir"; mkdir -p "$dir"
  # The load tool logs in as an admin on the password alone (prepare, unlock): the benchmark
  # measures validations, not admin logins, so its server lets that admin in without a token.
  local env=(TESSERA_LOG=warn TESSERA_AUTH__ADMIN_SECOND_FACTOR=false)
  [ -n "$url" ] && env+=(TESSERA_DATABASE__URL="$url")
  env "${env[@]}" $SERVER --data-dir "$dir/data" migrate >/dev/null
  printf '%s\n' "$BENCH_PW" | env "${env[@]}" $SERVER --data-dir "$dir/data" user add benchadmin --admin --password-stdin >/dev/null
  env "${env[@]}" $SERVER --data-dir "$dir/data" serve --listen "127.0.0.1:$PORT" >"$dir/serve.log" 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null || true' RETURN
  for _ in $(seq 1 50); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
  $LOAD prepare --url "$URL" --admin-user benchadmin \
    --admin-password-env BENCH_PW --users "$USERS" --prefix b --out "$dir/seeds.json" --with-password
  SERVER2_PID=
  if [ "$NODES" = 2 ] && [ -n "$url" ]; then
    env "${env[@]}" TESSERA_KEYS__KEY_FILE="$dir/data/tessera.key" $SERVER --data-dir "$dir/data2" \
      serve --listen "127.0.0.1:$((PORT + 1))" >"$dir/serve2.log" 2>&1 &
    SERVER2_PID=$!
    trap 'kill $SERVER_PID $SERVER2_PID 2>/dev/null || true' RETURN
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$((PORT + 1))/readyz" >/dev/null && break; sleep 0.2; done
    $LOAD prepare --url "http://127.0.0.1:$((PORT + 1))" --admin-user benchadmin \
      --admin-password-env BENCH_PW --users "$USERS" --prefix n --out "$dir/seeds-n2.json"
  fi
  local specs spec rep
  IFS=, read -ra specs <<<"$CASES"
  for spec in "${specs[@]}"; do
    set -- $spec
    local reps=$REPS
    # The replay check is a yes/no result, not a timing: once is enough.
    [ "$1" = duplicate ] && reps=1
    for rep in $(seq 1 "$reps"); do
      if [ -n "$SERVER2_PID" ] && [ "$1" = hotp_valid ] && [ -z "${3:-}" ]; then
        run_pair "$dir" "$label" "$2" "$rep"; continue
      fi
      case "$1" in
        mixed) run_mixed "$dir" "$label" "$2" "$rep" || true; continue ;;
        wrk) unlock_all "$dir/seeds.json"; run_wrk "$dir" "$label" "$2" "$rep" || true; continue ;;
      esac
      local extra=(--concurrency "$2")
      [ "$1" = duplicate ] && extra=(--parallel "$2" --tokens 50)
      [ -n "${3:-}" ] && extra+=(--rate "${3#@}")
      # Each TOTP token has at most two codes to give per 30 s step, all used within the first
      # moments: a warm-up would use them up and leave the measured seconds empty.
      [ "$1" = totp_valid ] && extra+=(--warmup 0)
      unlock_all "$dir/seeds.json"
      guarded "$label $spec" "$dir/run.json" $LOAD run --seeds "$dir/seeds.json" --case "$1" "${extra[@]}" \
        --duration "$DURATION" --server-pid "$SERVER_PID" ${TOOL_ARGS:-} --json || continue
      jq -c '. + {tool: "tessera-load"}' "$dir/run.json" >"$dir/run.tmp" && mv "$dir/run.tmp" "$dir/run.json"
      record "$label" "$rep" "$dir/run.json"
    done
  done
  kill $SERVER_PID $SERVER2_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true
}

WATCH_NAMES=
[[ " $DBS " == *" sqlite "* ]] && run_db sqlite ""
if [[ " $DBS " == *" postgres "* ]] && pg_isready -h 127.0.0.1 -p 5432 -q; then
  # PostgreSQL's processes work for the server under test: their CPU is the run's own.
  WATCH_NAMES="--watch-name postgres"
  db="tessera_bench_$(date +%s)"
  psql "$PG_URL/test" -qc "CREATE DATABASE $db"
  run_db postgres "$PG_URL/$db"
  psql "$PG_URL/test" -qc "DROP DATABASE $db" || true
fi

# The median of the clean runs of this invocation, with the range.
echo
echo "median (min-max) of the clean runs, $RUN_ID:"
jq -rs --arg run "$RUN_ID" '
  def med: sort | .[(length - 1) / 2 | floor];
  def fmt(f): (map(f) | "\(med) (\(min)-\(max))");
  map(select(.run == $run and (.mixed | not)))
  | group_by([.db, .tool, .case, .concurrency, (.target_rps // 0), (.node // "")])
  | .[]
  | "\(.[0].db)\(if .[0].node then " node \(.[0].node)" else "" end) \(.[0].tool) \(.[0].case) c=\(.[0].concurrency) \(if .[0].target_rps then "open loop @\(.[0].target_rps)/s" else .[0].mode // "closed" end): \(length) runs, req/s \(fmt(.rps)), p50 \(fmt(.p50_ms)) ms, p99 \(fmt(.p99_ms)) ms, max \(fmt(.max_ms)) ms"
' "$OUT"
echo "results in $OUT"
