#!/usr/bin/env bash
# Screenshots of every enrollment page, in English and German, at desktop (1280x900) and phone
# (390x844) size, into docs/screenshots/enroll/. Documentation, not a test: run it by hand after
# changing templates or CSS, then look at the pictures.
#
# It starts a real `tessera serve` on loopback with a throw-away data directory, walks each page
# of the flow with curl (the form posts too: the done page exists only as the answer to the
# correct first code), saves every answer as HTML next to a copy of the stylesheet, and has
# headless Chromium photograph the saved pages. Codes come from oathtool, the key from zbarimg.
#
# Needs: chromium, zbarimg (zbar-tools), oathtool, sqlite3, python3, curl
#   apt-get install -y chromium zbar-tools oathtool sqlite3 curl
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/screenshots/enroll
work=$(mktemp -d)
data="$work/data"
html="$work/html"
mkdir -p "$html/static" "$out"
cp crates/server/static/enroll.css "$html/static/enroll.css"

cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${http_pid:-}" ] && kill "$http_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q -p tessera-server --bin tessera
bin=target/debug/tessera
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
base="http://127.0.0.1:$port"
export TESSERA_ENROLL__ORGANISATION="Beispiel GmbH"
TESSERA_LOG=warn "$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

desktop_ua="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
phone_ua="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"

tessera() { "$bin" --data-dir "$data" "$@"; }
link_of() { tessera --json enroll link "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["link"].split("/",3)[3])'; }
form_token() { grep -o 'name="form_token" value="[^"]*"' "$1" | head -n1 | sed 's/.*value="\([^"]*\)"/\1/'; }
# save NAME LANG UA PATH [curl args...]: the page as HTML, for the screenshot.
save() {
  local name=$1 lang=$2 ua=$3 path=$4
  shift 4
  curl -s -A "$ua" -H "Accept-Language: $lang" "$@" "$base/$path" -o "$html/$name-$lang.html"
}

for lang in en de; do
  if [ "$lang" = de ]; then who="Anna Schmidt"; else who="Anna Smith"; fi
  for u in a b c; do
    tessera user add "$u-$lang" --display-name "$who" --email "$u-$lang@example.org" \
      --language "$lang" --otp-required >/dev/null
  done

  # The happy path: landing (desktop and phone), QR, direct link, name and code, done, finished.
  link=$(link_of "a-$lang")
  save landing "$lang" "$desktop_ua" "$link"
  save landing-phone "$lang" "$phone_ua" "$link?device=android"
  token=$(form_token "$html/landing-$lang.html")
  curl -s -o /dev/null -d "form_token=$token&device=android&path=qr" "$base/$link/start"
  save qr "$lang" "$desktop_ua" "$link/qr"
  save app "$lang" "$phone_ua" "$link/app?device=android"
  save verify "$lang" "$desktop_ua" "$link/verify"
  curl -s "$base/$link/qr.png" -o "$work/qr.png"
  uri=$(zbarimg -q --raw "$work/qr.png" 2>/dev/null)
  secret=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["secret"][0])' "$uri")
  token=$(form_token "$html/verify-$lang.html")
  save done "$lang" "$desktop_ua" "$link/verify" --data-urlencode "form_token=$token" \
    --data-urlencode "name=Diensthandy" --data-urlencode "code=$(oathtool --totp -b "$secret")"
  token=$(form_token "$html/done-$lang.html")
  save finished "$lang" "$desktop_ua" "$link/done" -d "form_token=$token&saved=yes"
  save used "$lang" "$desktop_ua" "$link"

  # A wrong code.
  link=$(link_of "b-$lang")
  save tmp "$lang" "$desktop_ua" "$link"
  token=$(form_token "$html/tmp-$lang.html")
  curl -s -o /dev/null -d "form_token=$token&device=other&path=qr" "$base/$link/start"
  save tmp "$lang" "$desktop_ua" "$link/verify"
  token=$(form_token "$html/tmp-$lang.html")
  save wrong-code "$lang" "$desktop_ua" "$link/verify" -d "form_token=$token&name=Diensthandy&code=000000"
  rm -f "$html/tmp-$lang.html"

  # Replaced, expired and unknown links.
  old=$(link_of "c-$lang")
  new=$(link_of "c-$lang")
  save superseded "$lang" "$desktop_ua" "$old"
  hash=$(printf '%s' "${new#enroll/}" | sha256sum | cut -d' ' -f1)
  sqlite3 "$data/tessera.db" "UPDATE invitations SET expires_at = 0 WHERE id_hash = '$hash'"
  save expired "$lang" "$desktop_ua" "$new"
  save unknown "$lang" "$desktop_ua" "enroll/this-link-does-not-exist"
done

http_port=$(free_port)
python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$html" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$http_port/static/enroll.css" >/dev/null && break; sleep 0.1; done

shoot() { # FILE SIZE UA URL
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$(mktemp -d -p "$work")" --user-agent="$3" \
    --screenshot="$1" --window-size="$2" "$4" >/dev/null 2>&1
}
for page in "$html"/*.html; do
  name=$(basename "$page" .html)
  shoot "$out/$name-desktop.png" 1280,900 "$desktop_ua" "http://127.0.0.1:$http_port/$name.html"
  shoot "$out/$name-phone.png" 390,844 "$phone_ua" "http://127.0.0.1:$http_port/$name.html"
  echo "$out/$name-{desktop,phone}.png"
done
