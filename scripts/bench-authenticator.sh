#!/usr/bin/env bash
# tessera-auth's figures (docs/benchmarks.md): unlock + listing of a 500-token vault at the
# default Argon2id cost, and the import of a 10,000-line URI list, each run RUNS times, timed
# by /usr/bin/time (wall seconds, peak RSS of the whole process).
# usage: scripts/bench-authenticator.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release -q -p tessera-authenticator --bin tessera-auth
bin=target/release/tessera-auth
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo 246810 > "$work/pin"
export TESSERA_AUTH_PIN_FILE="$work/pin"
python3 - "$work" <<'PY'
import base64, os, sys
work = sys.argv[1]
def line(i):
    secret = base64.b32encode(os.urandom(20)).decode().rstrip("=")
    return f"otpauth://totp/Svc{i}:user{i}@example.com?secret={secret}&issuer=Svc{i}\n"
open(f"{work}/500.txt", "w").write("".join(line(i) for i in range(500)))
open(f"{work}/10000.txt", "w").write("".join(line(i) for i in range(10000)))
PY
export TESSERA_AUTH_VAULT="$work/500/vault.tsv1"
"$bin" init >/dev/null 2>&1
"$bin" add "$work/500.txt" >/dev/null
echo "== codes --json, 500 tokens (unlock with Argon2id m=64 MiB t=3 p=4, then every code)"
for _ in $(seq "$runs"); do
  /usr/bin/time -f "%e s, %M KiB" "$bin" codes --json 2>&1 >/dev/null | tail -1
done
echo "== add a 10,000-line URI list (unlock included) into a fresh vault"
for r in $(seq "$runs"); do
  export TESSERA_AUTH_VAULT="$work/big$r/vault.tsv1"
  "$bin" init >/dev/null 2>&1
  /usr/bin/time -f "%e s, %M KiB" "$bin" add "$work/10000.txt" 2>&1 >/dev/null | tail -1
done
echo "== the same import's parts: unlock alone (list of an empty vault)"
export TESSERA_AUTH_VAULT="$work/empty/vault.tsv1"
"$bin" init >/dev/null 2>&1
for _ in $(seq "$runs"); do
  /usr/bin/time -f "%e s, %M KiB" "$bin" list 2>&1 >/dev/null | tail -1
done
