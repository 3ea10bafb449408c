#!/usr/bin/env bash
# RADIUS benchmark: Tessera's RADIUS server on SQLite (and PostgreSQL if DBS says so) with
# tessera-load's RADIUS cases, and radclient with the FreeRADIUS anchor's command line, with
# FreeRADIUS 3.2 (PAP against a users file, ../shared/anchors/freeradius/bench.sh) in the same
# run. Everything on loopback, every run ends by itself; prints one JSON line per run.
#
#   bash scripts/bench-radius.sh              # REPS=3 DURATION=10 USERS=1000
#   FREERADIUS_BENCH=/path/to/bench.sh bash scripts/bench-radius.sh
#
# The servers run with reject_delay_ms = 0 (FreeRADIUS's anchor sets reject_delay = 0 too): the
# wrong-code case measures the work, not the delay.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DURATION=${DURATION:-10}
USERS=${USERS:-1000}
WORK=${WORK:-/tmp/tessera-radius-bench}
HTTP_PORT=${HTTP_PORT:-8183}
RADIUS_PORT=${RADIUS_PORT:-18121}
DBS=${DBS:-sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
FREERADIUS_BENCH=${FREERADIUS_BENCH:-../shared/anchors/freeradius/bench.sh}
command -v radclient >/dev/null || { echo "needs radclient (.ci/install-tools)" >&2; exit 1; }
cargo build --release -q
BIN=target/release
export BENCH_PW='bench admin password'
export RADIUS_SECRET='bench-radius-secret-0123456789abcdef'
mkdir -p "$WORK"

run_db() {
  local label=$1 url=$2 dir="$WORK/$1"
  rm -rf "$dir"; mkdir -p "$dir"
  local env=(TESSERA_LOG=warn TESSERA_AUTH__ADMIN_SECOND_FACTOR=false
    TESSERA_RADIUS__LISTEN="127.0.0.1:$RADIUS_PORT" TESSERA_RADIUS__REJECT_DELAY_MS=0
    TESSERA_RADIUS__REJECT_JITTER_MS=0 TESSERA_RADIUS__CLIENT_RELOAD_SECS=1)
  [ -n "$url" ] && env+=(TESSERA_DATABASE__URL="$url")
  env "${env[@]}" $BIN/tessera --data-dir "$dir/data" migrate >/dev/null
  printf '%s\n' "$BENCH_PW" | env "${env[@]}" $BIN/tessera --data-dir "$dir/data" user add benchadmin --admin --password-stdin >/dev/null
  # One client per mode, each on its own loopback address.
  local i=1 mode
  for mode in code password+code challenge; do
    printf '%s\n' "$RADIUS_SECRET" | env "${env[@]}" $BIN/tessera --data-dir "$dir/data" \
      radius client add "bench-$i" --address "127.0.0.$i" --mode "$mode" --secret-stdin >/dev/null
    i=$((i + 1))
  done
  env "${env[@]}" $BIN/tessera --data-dir "$dir/data" serve --listen "127.0.0.1:$HTTP_PORT" >"$dir/serve.log" 2>&1 &
  local pid=$!
  trap "kill $pid 2>/dev/null || true" RETURN
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null && break; sleep 0.2; done
  $BIN/tessera-load prepare --url "http://127.0.0.1:$HTTP_PORT" --admin-user benchadmin \
    --admin-password-env BENCH_PW --users "$USERS" --prefix r --out "$dir/seeds.json" --with-password >/dev/null
  local rep spec case bind extra
  for rep in $(seq 1 "$REPS"); do
    # `wrong` last: its failures throttle the tokens, which `unlock` then clears for the next
    # repetition (as scripts/bench.sh does between cases).
    for spec in "code 127.0.0.1" "password-code 127.0.0.2" "challenge 127.0.0.3" \
                "retransmit 127.0.0.1" "code 127.0.0.1 hostile" "wrong 127.0.0.1"; do
      set -- $spec; case=$1; bind=$2; extra=()
      if [ "${3:-}" = hostile ]; then
        # Forged traffic at 5x the valid rate of this repetition's code run.
        local valid; valid=$(jq -r 'select(.case == "code" and .hostile_sent == 0) | .logins_per_second' "$dir/rep$rep.jsonl" | tail -1)
        extra=(--hostile-rate "$(python3 -c "print(int(5 * ${valid:-1000}))")")
      fi
      $BIN/tessera-load radius --seeds "$dir/seeds.json" --server "127.0.0.1:$RADIUS_PORT" \
        --secret-env RADIUS_SECRET --case "$case" --bind "$bind" --in-flight 32 \
        --duration "$DURATION" "${extra[@]}" | jq -c ". + {db: \"$label\", rep: $rep}" | tee -a "$dir/rep$rep.jsonl"
    done
    $BIN/tessera-load unlock --seeds "$dir/seeds.json" --admin-user benchadmin --admin-password-env BENCH_PW >/dev/null
    # radclient with the anchor's command line, code-only, each code once: a request file of
    # fresh HOTP codes (200 users x 30 codes, as FreeRADIUS's users-file run).
    python3 - "$dir/seeds.json" "$dir/req.txt" <<'PY'
import json, sys, hmac, hashlib, base64, struct
seeds = json.load(open(sys.argv[1]))
toks = [t for t in seeds["tokens"] if t["kind"] == "hotp"][:200]
def hotp(secret, counter, digits):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = h[-1] & 15
    return str((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 10 ** digits).zfill(digits)
with open(sys.argv[2], "w") as f:
    for k in range(30):
        for t in toks:
            c = t["next_counter"] + k
            f.write(f'User-Name = "{t["username"]}"\nUser-Password = "{hotp(t["secret"], c, t["digits"])}"\nMessage-Authenticator = 0x00\n\n')
for t in toks:
    t["next_counter"] += 30
json.dump(seeds, open(sys.argv[1], "w"), indent=2)
PY
    local s e out acc
    s=$(date +%s.%N)
    out=$(radclient -q -s -p 32 -r 1 -t 5 -f "$dir/req.txt" "127.0.0.1:$RADIUS_PORT" auth "$RADIUS_SECRET" 2>&1 || true)
    e=$(date +%s.%N)
    acc=$(grep -o "Accepted *: *[0-9]*" <<<"$out" | grep -o "[0-9]*$" || echo 0)
    python3 -c "import json; print(json.dumps({'case': 'radclient-code', 'db': '$label', 'rep': $rep, 'accepted': $acc, 'requests': 6000, 'accepted_per_second': int($acc / ($e - $s))}))" | tee -a "$dir/rep$rep.jsonl"
  done
  kill $pid 2>/dev/null || true
}

for db in $DBS; do
  case $db in
    sqlite) run_db sqlite "" ;;
    postgres) run_db postgres "$PG_URL/tessera_radius_bench_$(date +%s)" ;;
  esac
done
if [ -f "$FREERADIUS_BENCH" ]; then
  echo "FreeRADIUS 3.2 users file, the same radclient command (anchor):"
  RUNS=$REPS bash "$FREERADIUS_BENCH"
fi
