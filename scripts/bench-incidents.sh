#!/usr/bin/env bash
# Benchmark (not a test): what recording an incident costs while it is
# open. The same levee binary as an HTTP/1.1 reverse proxy in front of an
# nginx origin, the site pinned `elevated` (an incident is open the whole
# run: every request is counted by outcome and ranked by source prefix,
# and a line is written each second), with `[incidents]` on and off,
# alternated round by round (ABBA), each started afresh. Prints req/s and
# the proxy's CPU time per request (user + system, from /proc). Answers
# other than 2xx are counted (a defense tripped by the load would show).
#
# Usage: scripts/bench-incidents.sh [rounds] [seconds]
set -euo pipefail
ROUNDS=${1:-6}
DUR=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/ab-lib.sh
. "$ROOT/scripts/ab-lib.sh"
ab_setup 18501 18504
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
BIN="$ROOT/target/release/levee"
mkdir -p "$WORK/incidents"
for v in off on; do
  ab_levee_config "$WORK/levee-$v.toml" "$WORK/levee-access-$v.log"
  cat >> "$WORK/levee-$v.toml" <<CONF
[site.defense]
pin = "elevated"
[incidents]
enabled = $([ $v = on ] && echo true || echo false)
dir = "$WORK/incidents"
CONF
done
ab_start() { taskset -c 0 "$BIN" serve --config "$WORK/levee-$1.toml" --workers 1 2>>"$WORK/levee.err" & }
ab_run off on
echo
echo "incident records written: $(ls "$WORK/incidents" | wc -l); the last one's lines: $(ls -t "$WORK/incidents"/*.jsonl | head -1 | xargs wc -l | awk '{print $1}')"
