#!/usr/bin/env bash
# Screenshots of the login, portal and admin pages and of recovery and reset (pages and mails),
# in English and German, at desktop (1280x900) and phone (390x844) size, into
# docs/screenshots/{login,portal,admin,recovery}/. Documentation, not a test: run it by hand
# after changing templates, mails or CSS, then look at the pictures.
#
# It starts a real `tessera serve` on loopback with a throw-away data directory and has
# crates/server/tests/browser/screenshots.mjs and recovery-screenshots.mjs (playwright-core
# driving Debian's chromium) walk the pages; users and tokens come from the CLI, codes from
# oathtool, mails from the server's outbox.
#
# Needs: chromium, oathtool, node; `bash .ci/install-tools` installs them and playwright-core.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q -p tessera-server --bin tessera
bin=$PWD/target/debug/tessera
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TESSERA_ENROLL__ORGANISATION="Beispiel GmbH"
# Every recovery and reset of the walk comes from this one address within a minute or two.
export TESSERA_RECOVERY__MAX_PER_SOURCE_PER_MINUTE=1000
# The walk's admins sign in with the password to reach the admin pages quickly; a real
# installation asks them to enroll a second factor first (auth.admin_second_factor).
export TESSERA_AUTH__ADMIN_SECOND_FACTOR=false
TESSERA_LOG=warn "$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

BASE="$base" BIN="$bin" DATA="$work/data" OUT="$PWD/docs/screenshots" \
  node crates/server/tests/browser/screenshots.mjs
BASE="$base" BIN="$bin" DATA="$work/data" OUT="$PWD/docs/screenshots" \
  node crates/server/tests/browser/recovery-screenshots.mjs
