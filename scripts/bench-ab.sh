#!/usr/bin/env bash
# Benchmark (not a test): this tree's levee against an earlier commit's, as
# HTTP/1.1 reverse proxies in front of the same nginx origin, alternated
# round by round (ABBA), each started afresh, all defaults on. Prints req/s
# and the proxy's CPU time per request (user + system, from /proc): on a
# noisy VM the CPU time per request is the steadier figure. Answers other
# than 2xx are counted.
#
# Usage: scripts/bench-ab.sh <commit> [rounds] [seconds]
set -euo pipefail
OLD=${1:?usage: scripts/bench-ab.sh <commit> [rounds] [seconds]}
ROUNDS=${2:-6}
DUR=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/ab-lib.sh
. "$ROOT/scripts/ab-lib.sh"
ab_cleanup() { git -C "$ROOT" worktree remove --force "$WORK/old"; }
ab_setup 18301 18304
echo "building levee (release) here and at $OLD (in $WORK/old)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
git -C "$ROOT" worktree add -q --detach "$WORK/old" "$OLD"
(cd "$WORK/old" && CARGO_TARGET_DIR="$ROOT/target/ab-old" cargo build --release -q -p levee)
NEW_BIN="$ROOT/target/release/levee"
OLD_BIN="$ROOT/target/ab-old/release/levee"
ab_levee_config "$WORK/levee.toml" "$WORK/levee-access.log"
ab_start() {
  local bin=$NEW_BIN; [ "$1" = old ] && bin=$OLD_BIN
  taskset -c 0 "$bin" serve --config "$WORK/levee.toml" --workers 1 2>>"$WORK/levee.err" &
}
ab_run old new
