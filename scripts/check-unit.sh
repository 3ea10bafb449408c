#!/usr/bin/env bash
# The shipped systemd unit must score an exposure of at most 2.0 in `systemd-analyze security`
# (offline: no running systemd is needed). Called by .ci/run; exits non-zero above 2.0. The
# figure is read from the report: with --offline the command's own exit code also reflects that
# /usr/bin/tessera is not installed on the machine checking it.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=${1:-packaging/tessera.service}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is missing (Debian package systemd)" >&2
  exit 1
fi
out=$(systemd-analyze security --offline=true "$unit" 2>&1 || true)
score=$(echo "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  echo "$out" >&2
  echo "$unit: no exposure figure in systemd-analyze's report" >&2
  exit 1
fi
echo "$unit: exposure $score (at most 2.0)"
if ! awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
  echo "$out" | grep '✗' >&2
  echo "$unit: exposure $score is above 2.0" >&2
  exit 1
fi
