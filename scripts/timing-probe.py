#!/usr/bin/env python3
"""Does a login take the same time for an existing and an unknown user?

Starts `tessera serve` (release build) on a fresh data directory, creates a user with an active
TOTP token and an application (password_and_otp) through the CLI, then sends interleaved tries
to the web login (`POST /login`) and to `POST /api/v1/validate`: an existing user with a wrong
code, and an unknown user, each with a password. Prints median, p10 and p90 per case, in ms.

Usage: python3 scripts/timing-probe.py [TRIES]   (default 200 per case; loopback only)
Needs `cargo build --release` first. Not a test: the machine is shared and noisy.
"""

import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tessera")
PASSWORD = "probe password 12345"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env, *args, stdin=None):
    out = subprocess.run([BIN, *args], env=env, input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"tessera {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    tries = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    data = tempfile.mkdtemp(prefix="tessera-timing-")
    port = free_port()
    env = dict(os.environ, TESSERA_DATA_DIR=data, TESSERA_SERVER__LISTEN=f"127.0.0.1:{port}",
               RUST_LOG="warn")
    # A user with an active token, and an application.
    cli(env, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    token = json.loads(cli(env, "--json", "token", "add", "alice"))
    secret = re.search(r"secret=([A-Z2-7]+)", token["otpauth_uri"]).group(1)
    code = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True,
                          text=True, check=True).stdout.strip()
    cli(env, "token", "verify", str(token["id"]), code)
    app = json.loads(cli(env, "--json", "app", "add", "probe", "--mode", "password_and_otp"))
    key = app["api_key"]

    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(base + "/login").read().decode()
        form = re.search(r'name="login_form" value="([^"]+)"', page).group(1)

        def web(user):
            body = urllib.parse.urlencode({"login_form": form, "username": user,
                                           "password": PASSWORD, "code": "000000"}).encode()
            start = time.perf_counter()
            try:
                opener.open(urllib.request.Request(base + "/login", data=body)).read()
            except urllib.error.HTTPError as e:
                e.read()
            return (time.perf_counter() - start) * 1000

        def validate(user):
            body = json.dumps({"username": user, "password": PASSWORD, "otp": "000000"}).encode()
            req = urllib.request.Request(base + "/api/v1/validate", data=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            start = time.perf_counter()
            urllib.request.urlopen(req).read()
            return (time.perf_counter() - start) * 1000

        results = {}
        for name, fn in [("web /login", web), ("POST /api/v1/validate", validate)]:
            existing, unknown = [], []
            for i in range(tries):
                # Interleaved, so that a slow phase of the machine hits both alike. Each try
                # from the existing user is a wrong code: it never locks the source out (the
                # password is right), and the unknown names are fresh each time.
                existing.append(fn("alice"))
                unknown.append(fn(f"nobody{i}"))
            results[name] = (existing, unknown)
        print(f"{'path':24} {'user':9} {'median':>8} {'p10':>8} {'p90':>8}   ({tries} tries each)")
        for name, (existing, unknown) in results.items():
            for who, values in [("existing", existing), ("unknown", unknown)]:
                print(f"{name:24} {who:9} {statistics.median(values):8.2f} "
                      f"{percentile(values, 0.1):8.2f} {percentile(values, 0.9):8.2f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
