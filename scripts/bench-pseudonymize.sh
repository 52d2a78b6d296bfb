#!/usr/bin/env bash
# Benchmark (not a test): the cost of the pseudonymised access log. The same
# levee binary as an HTTP/1.1 reverse proxy in front of an nginx origin, with
# `[access_log] pseudonymize` off and on, alternated round by round (ABBA),
# each started afresh, all defaults on. Prints req/s and the proxy's CPU
# time per request (user + system, from /proc). Answers other than 2xx are
# counted.
#
# Usage: scripts/bench-pseudonymize.sh [rounds] [seconds]
set -euo pipefail
ROUNDS=${1:-6}
DUR=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/ab-lib.sh
. "$ROOT/scripts/ab-lib.sh"
ab_setup 18401 18404
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
BIN="$ROOT/target/release/levee"
mkdir -p "$WORK/keys" "$WORK/logs"
ab_levee_config "$WORK/levee-raw.toml" "$WORK/logs/levee-access-raw.log"
ab_levee_config "$WORK/levee-pseudo.toml" "$WORK/logs/levee-access-pseudo.log" "pseudonymize = true
key_dir = \"$WORK/keys\""
ab_start() { taskset -c 0 "$BIN" serve --config "$WORK/levee-$1.toml" --workers 1 2>>"$WORK/levee.err" & }
ab_run raw pseudo
head -c 300 "$WORK/logs/levee-access-pseudo.log"; echo
