#!/usr/bin/env bash
# Benchmark (not a test): `levee hunt` with every SigmaHQ web/proxy rule over
# the real Apache log repeated N times, against `grep -F -i -f` with the
# rules' literal values (roughly what an analyst would otherwise run, and
# far less precise: no fields, no conditions). Same file, same run, one core.
#
# Usage: scripts/bench-hunt.sh [copies] (default 100: 1,000,000 lines)
set -euo pipefail
N=${1:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA="$ROOT/../shared/data"
[ -d "$DATA/sigma" ] || { echo "needs ../shared/data (the third-party test material)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/levee-hunt-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && cargo build --release -q -p levee)
for _ in $(seq "$N"); do cat "$DATA/logs/elastic-apache/apache_logs"; done > "$WORK/access.log"
LINES=$(wc -l < "$WORK/access.log")
# Literal values of the rules (quoted YAML scalars under the detections), wildcards dropped.
grep -rhoE "^\s+- '[^']{4,}'" "$DATA/sigma" | sed -E "s/^\s+- '//; s/'$//; s/\*//g" | sort -u > "$WORK/patterns.txt"
echo "$LINES lines, $(wc -l < "$WORK/patterns.txt") grep patterns, 142 Sigma rules" >&2
# Output to a file: GNU grep stops at the first match when its output is /dev/null.
t() { local s e; s=$(date +%s.%N); "$@" >"$WORK/out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
HUNT=$(t taskset -c 0 "$ROOT/target/release/levee" hunt --sigma "$DATA/sigma" "$WORK/access.log")
GREP=$(t taskset -c 0 grep -c -F -i -f "$WORK/patterns.txt" "$WORK/access.log")
printf "levee hunt: %.2f s (%.0f lines/s)\ngrep -F -i: %.2f s (%.0f lines/s)\nratio hunt/grep time: %.2f\n" \
  "$HUNT" "$(echo "$LINES / $HUNT" | bc -l)" "$GREP" "$(echo "$LINES / $GREP" | bc -l)" "$(echo "$HUNT / $GREP" | bc -l)"
