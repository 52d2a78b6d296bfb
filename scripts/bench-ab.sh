#!/usr/bin/env bash
# Benchmark (not a test): this tree's levee against an earlier commit's, as
# HTTP/1.1 reverse proxies in front of the same nginx origin, alternated
# round by round, each started afresh, all defaults on. Prints req/s and the
# proxy's CPU time per request (user + system, from /proc): on a noisy VM
# the CPU time per request is the steadier figure. Answers other than 2xx
# are counted.
#
# Usage: scripts/bench-ab.sh <commit> [rounds] [seconds]
set -euo pipefail
OLD=${1:?usage: scripts/bench-ab.sh <commit> [rounds] [seconds]}
ROUNDS=${2:-6}
DUR=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; git -C "$ROOT" worktree remove --force "$WORK/old" 2>/dev/null || true' EXIT
for t in nginx wrk taskset bc; do
  command -v $t >/dev/null || { echo "missing $t: run scripts/install-test-deps.sh --bench" >&2; exit 2; }
done
echo "building levee (release) here and at $OLD (in $WORK/old)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
git -C "$ROOT" worktree add -q --detach "$WORK/old" "$OLD"
(cd "$WORK/old" && CARGO_TARGET_DIR="$ROOT/target/ab-old" cargo build --release -q -p levee)
NEW_BIN="$ROOT/target/release/levee"
OLD_BIN="$ROOT/target/ab-old/release/levee"
ORIGIN=18301; LEV=18304
cat > "$WORK/origin.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
CONF
cat > "$WORK/levee.toml" <<CONF
[[listener]]
address = "127.0.0.1:$LEV"
[admin]
address = "127.0.0.1:0"
[access_log]
path = "$WORK/levee-access.log"
[[site]]
name = "bench"
hosts = ["127.0.0.1", "localhost"]
[[site.origin]]
address = "127.0.0.1:$ORIGIN"
CONF
mkdir -p "$WORK/o"
taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK/o" &
sleep 1
: > "$WORK/runs.txt"
echo "# wrk -t1 -c64 -d${DUR}s (core 1) -> levee --workers 1 (core 0) -> nginx origin (core 1)"
echo "# build rps cpu_us_per_request non_2xx"
for r in $(seq 1 "$ROUNDS"); do
  for b in old new; do
    bin=$NEW_BIN; [ $b = old ] && bin=$OLD_BIN
    taskset -c 0 "$bin" serve --config "$WORK/levee.toml" --workers 1 2>>"$WORK/levee.err" &
    pid=$!
    for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$LEV/" && break; sleep 0.1; done
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$LEV/")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    tck=$(getconf CLK_TCK)
    us=$(echo "($t1 - $t0) * 1000000 / $tck / $n" | bc -l | xargs printf '%.2f')
    echo "$b $rps $us ${bad:-0}" | tee -a "$WORK/runs.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for b in old new; do
  eval "RPS_$b=$(awk -v b=$b '$1==b {print $2}' "$WORK/runs.txt" | median)"
  eval "US_$b=$(awk -v b=$b '$1==b {print $3}' "$WORK/runs.txt" | median)"
done
echo
printf 'medians: %s rps=%s cpu=%sus/req | this tree rps=%s cpu=%sus/req\n' "$OLD" "$RPS_old" "$US_old" "$RPS_new" "$US_new"
printf 'this tree / %s: rps %.2f, cpu per request %.2f\n' "$OLD" "$(echo "$RPS_new / $RPS_old" | bc -l)" "$(echo "$US_new / $US_old" | bc -l)"
