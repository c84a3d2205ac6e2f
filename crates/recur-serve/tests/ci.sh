#!/usr/bin/env bash
# The server's checks outside `cargo test`, run by .ci/run: the web demo in headless Chromium,
# schemathesis against /openapi.json (0 crashes, 0 5xx), answers under concurrent load
# byte-identical to `recur translate`, SIGTERM exit status, and a short smoke
# run of the load benchmark. Installs what it needs from Debian, npm and PyPI; a browser or
# fuzzer that truly cannot be installed is skipped with a message, anything else failing fails.
set -euo pipefail
cd "$(dirname "$0")/../../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
cargo build --release --quiet -p recur-cli
bin="$target/release/recur"

echo "-- the web demo in headless Chromium"
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi lohit; then
    if command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-lohit-deva >/dev/null) \
            || echo "apt-get install chromium fonts-lohit-deva failed"
    fi
fi
if command -v chromium >/dev/null 2>&1; then
    (cd crates/recur-serve/tests/browser && npm ci --no-audit --no-fund --silent)
    RECUR_BIN="$bin" SCREENSHOT="$target/serve-demo.png" node crates/recur-serve/tests/browser/demo.test.mjs
else
    echo "SKIP: the browser test (chromium could not be installed with apt-get)"
fi

echo "-- schemathesis against /openapi.json"
log="$target/serve-ci.log"
"$bin" serve --model hi-translit --model en-g2p --port 0 2>"$log" &
pid=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)
    [ -n "$addr" ] && break
    sleep 0.2
done
[ -n "$addr" ] || { echo "the server printed no address:"; cat "$log"; kill -TERM "$pid"; exit 1; }
venv="$target/schemathesis-venv"
if [ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis==4.32.5'; }; then
    # Run from a scratch directory: schemathesis writes a cache folder where it runs.
    (cd "$target" && timeout 900 "$venv/bin/schemathesis" --config-file "$OLDPWD/crates/recur-serve/tests/schemathesis.toml" \
        run "$addr/openapi.json" --checks all --max-examples 200 --generation-deterministic)
else
    echo "SKIP: schemathesis (pip install schemathesis failed)"
fi
echo "-- answers under concurrent load byte-identical to recur translate"
python3 crates/recur-serve/tests/same_as_cli.py "$bin" "$addr" data/dakshina_hi/lexicons/hi.translit.sampled.test.tsv
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode())' "$addr" > "$target/serve-metrics.txt"
grep -q '^recur_http_requests_total' "$target/serve-metrics.txt"
if grep -E '^recur_http_requests_total\{.*status="5' "$target/serve-metrics.txt"; then
    echo "the server answered 5xx"; kill -TERM "$pid"; exit 1
fi
kill -TERM "$pid"
wait "$pid" || { echo "the server did not exit 0 after SIGTERM"; exit 1; }
grep -q "shutting down" "$log"

echo "-- load benchmark smoke run (not timed)"
cargo run --release --quiet -p recur-serve --example load -- --clients 8 --seconds 2
echo "serve checks: 4 passed, 0 failed"
