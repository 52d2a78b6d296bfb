#!/usr/bin/env bash
# Benchmark (not a test): how long headless Chromium takes from navigation to
# the protected page (solve the proof of work, verify, load the page) at a
# given difficulty, through Debian's chromedriver. Usage: scripts/bench-challenge-browser.sh [bits] [runs]
set -euo pipefail
BITS=${1:-16}; RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-bench-chal.XXXXXX)
trap 'pkill -f "$WORK" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
for t in chromium chromedriver curl python3; do command -v $t >/dev/null || { echo "missing $t: scripts/install-test-deps.sh" >&2; exit 2; }; done
(cd "$ROOT" && cargo build --release -q -p levee)
L="$ROOT/target/release/levee"
"$L" serve --demo --listen 127.0.0.1:18380 --admin 127.0.0.1:18381 2>"$WORK/demo.err" >/dev/null & sleep 1
ORIGIN=$(sed -n 's|levee: demo origin on http://||p' "$WORK/demo.err")
cat > "$WORK/levee.toml" <<CONF
[[listener]]
address = "127.0.0.1:18382"
[admin]
address = "127.0.0.1:18383"
[access_log]
path = "off"
[[site]]
name = "demo"
hosts = ["127.0.0.1"]
[site.challenge]
mode = "always"
bits = $BITS
[[site.origin]]
address = "$ORIGIN"
CONF
"$L" serve --config "$WORK/levee.toml" 2>/dev/null & sleep 1
chromedriver --port=18384 >/dev/null 2>&1 & sleep 1
for r in $(seq 1 "$RUNS"); do
  SID=$(curl -s -X POST http://127.0.0.1:18384/session -d '{"capabilities":{"alwaysMatch":{"goog:chromeOptions":{"binary":"/usr/bin/chromium","args":["--headless","--no-sandbox","--disable-gpu","--no-first-run","--disable-background-networking","--disable-component-update","--disable-sync","--user-data-dir='"$WORK"'/p'"$r"'"]}}}}' | python3 -c "import sys,json; print(json.load(sys.stdin)['value']['sessionId'])")
  S=$(date +%s.%N)
  curl -s -X POST "http://127.0.0.1:18384/session/$SID/url" -d '{"url":"http://127.0.0.1:18382/"}' >/dev/null
  for i in $(seq 1 600); do
    curl -s "http://127.0.0.1:18384/session/$SID/title" | grep -q "demo site" && break
    sleep 0.05
  done
  E=$(date +%s.%N)
  printf 'bits=%s run %s: %.2f s from navigation to the protected page\n' "$BITS" "$r" "$(echo "$E - $S" | bc)"
  curl -s -X DELETE "http://127.0.0.1:18384/session/$SID" >/dev/null
done
