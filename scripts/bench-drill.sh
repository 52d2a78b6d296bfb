#!/usr/bin/env bash
# Benchmark (not a test): levee drill vs wrk as HTTP/1.1 keep-alive load
# generators, each from one core, against the same trivial origin (nginx,
# `return 200`, on the other core), in one run.
# Usage: scripts/bench-drill.sh [seconds] [rounds]
set -euo pipefail
DUR=${1:-10}; ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-bench-drill.XXXXXX)
trap 'pkill -f "$WORK" 2>/dev/null || true; sleep 0.2' EXIT
for t in nginx wrk taskset; do command -v $t >/dev/null || { echo "missing $t: scripts/install-test-deps.sh --bench" >&2; exit 2; }; done
(cd "$ROOT" && cargo build --release -q -p levee)
PORT=18301
cat > "$WORK/origin.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/o.pid; error_log $WORK/o.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000;
  server { listen 127.0.0.1:$PORT;
    location = /.well-known/levee-drill { return 200 "bench\n"; }
    location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
CONF
mkdir -p "$WORK/o"; taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK/o" & sleep 0.5
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
: > "$WORK/r.txt"
for r in $(seq 1 "$ROUNDS"); do
  w=$(taskset -c 0 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ {print $2}')
  d=$(taskset -c 0 "$ROOT/target/release/levee" drill --target "http://127.0.0.1:$PORT/" --token bench \
      --scenario "$ROOT/drills/bench-keepalive.toml" --duration "$DUR" --warmup 0 --legit 0 --workers 1 2>/dev/null \
      | awk -F': ' '/"attack_rate"/ {gsub(",","",$2); print $2}')
  echo "wrk $w" | tee -a "$WORK/r.txt"; echo "drill $d" | tee -a "$WORK/r.txt"
done
W=$(awk '$1=="wrk" {print $2}' "$WORK/r.txt" | median); D=$(awk '$1=="drill" {print $2}' "$WORK/r.txt" | median)
printf '\nmedians over %s rounds: wrk %.0f req/s, levee drill %.0f req/s, ratio drill/wrk %.2f\n' "$ROUNDS" "$W" "$D" "$(echo "$D / $W" | bc -l)"
