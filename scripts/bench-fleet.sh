#!/usr/bin/env bash
# Benchmark (not a test): one edge with [fleet] on (a real redis-server on
# loopback) against the same edge with it off, in one run; then the fleet's
# cost in the store and its decision lag between two edges.
#
# Both configurations have a per-client limit high enough that the
# benchmark's own load is never limited (every request is still counted by
# the limiter, and in a fleet its counts are sent every round), and the
# adaptive defense off (wrk is one client without a User-Agent: the cold
# start detector sometimes takes it for a flood, which is not what this
# measures); every run counts its non-2xx answers. The edge is pinned to core 0 (--workers 1);
# wrk, the nginx origin and redis-server share core 1. Each measurement
# starts a fresh edge (and, for fleet on, an empty Redis).
#
# Usage: scripts/bench-fleet.sh [duration_seconds] [rounds]
set -euo pipefail
DUR=${1:-10}
ROUNDS=${2:-3}
ulimit -n 65536 2>/dev/null || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-bench-fleet.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; sleep 0.3' EXIT
for t in nginx wrk taskset redis-server redis-cli curl bc; do
  command -v $t >/dev/null || { echo "missing $t: run scripts/install-test-deps.sh --bench" >&2; exit 2; }
done
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
LEVEE="$ROOT/target/release/levee"
ORIGIN=18201; LEV=18204; LEV2=18205; ADM=18206; ADM2=18207; REDIS=18209

cat > "$WORK/origin.conf" <<EOF2
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN reuseport; location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
EOF2
mkdir -p "$WORK/origin"
taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK/origin" &

conf() { # file listen admin fleet(0/1) name
  cat > "$1" <<EOF2
[[listener]]
address = "127.0.0.1:$2"
[admin]
address = "127.0.0.1:$3"
token = "bench-admin-token-0123456789abcdef"
[access_log]
path = "$WORK/access-$5.log"
[challenge]
secret = "bench-fleet-secret-0123456789abcdef"
[drill]
token = "bench-drill"
[[site]]
name = "bench"
hosts = ["127.0.0.1", "localhost"]
[site.rate_limit]
per_ip = 100000000
per_prefix = 100000000
window = "1s"
[[site.origin]]
address = "127.0.0.1:$ORIGIN"
[site.defense]
enabled = false
EOF2
  if [ "$4" = 1 ]; then printf '[fleet]\nredis = "redis://127.0.0.1:%s"\nname = "%s"\n' "$REDIS" "$5" >> "$1"; fi
}
conf "$WORK/off.toml" $LEV $ADM 0 a
conf "$WORK/on.toml" $LEV $ADM 1 a
conf "$WORK/b.toml" $LEV2 $ADM2 1 b
# For the store's cost under many sources: limits low enough that bots' keys are sent.
sed -e 's/^per_ip = .*/per_ip = 50/' -e 's/^per_prefix = .*/per_prefix = 1000/' -e 's/^enabled = false/enabled = true/' "$WORK/on.toml" > "$WORK/flood.toml"

start_redis() {
  taskset -c 1 redis-server --port $REDIS --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
  REDIS_PID=$!
  for _ in $(seq 1 50); do [ "$(redis-cli -p $REDIS ping 2>/dev/null)" = PONG ] && return 0; sleep 0.1; done
  echo "redis-server not answering" >&2; exit 1
}
stop_redis() { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }
start_levee() { # config port -> LEVEE_PID
  taskset -c 0 "$LEVEE" serve --config "$1" --workers 1 2>>"$WORK/levee.err" &
  LEVEE_PID=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$2/" && return 0; sleep 0.1; done
  echo "levee not answering" >&2; cat "$WORK/levee.err" >&2; exit 1
}
stop_levee() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cmds() { redis-cli -p $REDIS info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
to_ms() { local v=$1; case $v in *us) echo "$(echo "${v%us} / 1000" | bc -l | xargs printf '%.3f')";; *ms) echo "${v%ms}";; *s) echo "$(echo "${v%s} * 1000" | bc -l)";; *) echo "$v";; esac; }

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # name config -> "name rps p99_ms non2xx redis_ops_per_s rss_kb round_ms cpu_us_per_request"
  local c0=0 c1=0
  if [ "$1" = on ]; then start_redis; fi
  start_levee "$2" $LEV
  sleep 0.5
  if [ "$1" = on ]; then c0=$(cmds); fi
  local t0; t0=$(cpu_ticks "$LEVEE_PID")
  local out; out=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" --latency "http://127.0.0.1:$LEV/" 2>&1)
  local t1; t1=$(cpu_ticks "$LEVEE_PID")
  if [ "$1" = on ]; then c1=$(cmds); fi
  local rss; rss=$(rss_kb "$LEVEE_PID")
  local round; round=$(curl -s "http://127.0.0.1:$ADM/status" | sed -n 's/.*"round_ms":\([0-9]*\).*/\1/p')
  stop_levee "$LEVEE_PID"
  if [ "$1" = on ]; then stop_redis; fi
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local p99; p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local hz; hz=$(getconf CLK_TCK)
  printf '%s %s %s %s %.1f %s %s %.2f\n' "$1" "$rps" "$(to_ms "$p99")" "${non2xx:-0}" \
    "$(echo "($c1 - $c0) / $DUR" | bc -l)" "$rss" "${round:--}" \
    "$(echo "($t1 - $t0) * 1000000 / $hz / $reqs" | bc -l)"
}

sleep 1
echo "# wrk -t1 -c64 -d${DUR}s (core 1) -> levee --workers 1 (core 0) -> nginx origin (core 1); redis-server on core 1; $ROUNDS rounds"
echo "# name rps p99_ms non_2xx redis_commands_per_s levee_rss_kb last_round_ms levee_cpu_us_per_request"
: > "$WORK/runs.txt"
# One discarded run of each first (the machine's first seconds under load
# were the fastest of every run, whatever ran first); then alternating order.
run off "$WORK/off.toml" >/dev/null; run on "$WORK/on.toml" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
  for n in $order; do run $n "$WORK/$n.toml" | tee -a "$WORK/runs.txt"; done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo
for n in off on; do
  eval "RPS_$n=$(awk -v n=$n '$1==n {print $2}' "$WORK/runs.txt" | median)"
  eval "P99_$n=$(awk -v n=$n '$1==n {print $3}' "$WORK/runs.txt" | median)"
  eval "RSS_$n=$(awk -v n=$n '$1==n {print $6}' "$WORK/runs.txt" | median)"
  eval "BAD_$n=$(awk -v n=$n '$1==n {s+=$4} END {print s+0}' "$WORK/runs.txt")"
  eval "CPU_$n=$(awk -v n=$n '$1==n {print $8}' "$WORK/runs.txt" | median)"
done
OPS=$(awk '$1=="on" {print $5}' "$WORK/runs.txt" | median)
printf 'medians: off rps=%s p99=%sms rss=%sKiB non2xx=%s | on rps=%s p99=%sms rss=%sKiB non2xx=%s redis_cmds/s=%s\n' \
  "$RPS_off" "$P99_off" "$RSS_off" "$BAD_off" "$RPS_on" "$P99_on" "$RSS_on" "$BAD_on" "$OPS"
printf 'ratio on/off: rps=%.3f p99=%.2f cpu_per_request=%.3f (%s vs %s us); store commands per 1000 requests: %.3f\n' \
  "$(echo "$RPS_on / $RPS_off" | bc -l)" "$(echo "$P99_on / $P99_off" | bc -l)" \
  "$(echo "$CPU_on / $CPU_off" | bc -l)" "$CPU_on" "$CPU_off" "$(echo "$OPS * 1000 / $RPS_on" | bc -l)"

# The store's cost with many sources: drill floods against one fleet edge.
echo
echo "# store commands under many sources: levee drill (default rate) against one fleet edge, per_ip = 50/s, per_prefix = 1000/s"
for sc in http-flood carpet-bomb; do
  start_redis
  start_levee "$WORK/flood.toml" $LEV
  c0=$(cmds)
  t0=$(date +%s%N)
  taskset -c 1 "$LEVEE" drill --target "http://127.0.0.1:$LEV/" --token bench-drill --scenario $sc --warmup 0 --duration "${DUR}s" --legit 5 --workers 1 --json "$WORK/$sc.json" >/dev/null 2>&1 || true
  secs=$(echo "($(date +%s%N) - $t0) / 1000000000" | bc -l)
  c1=$(cmds)
  keys=$(redis-cli -p $REDIS --scan --pattern 'levee:v1:*:rl:*' | wc -l)
  stop_levee "$LEVEE_PID"; stop_redis
  sent=$(sed -n 's/.*"attack_sent": *\([0-9]*\).*/\1/p' "$WORK/$sc.json" | head -1)
  printf '%s: %s attack requests in %.1f s = %.0f req/s; %.0f store commands/s = %.2f per 1000 requests; %s counter keys live at the end\n' \
    $sc "${sent:-?}" "$secs" "$(echo "${sent:-0} / $secs" | bc -l)" "$(echo "($c1 - $c0) / $secs" | bc -l)" \
    "$(echo "($c1 - $c0) * 1000 / (${sent:-1} + 1)" | bc -l)" "$keys"
done

# Decision lag: a block made through A's admin API, until B refuses the address.
echo
echo "# decision lag: POST /blocks on edge A, then curl from the address to edge B every 5 ms until refused; 20 addresses"
start_redis
start_levee "$WORK/on.toml" $LEV; A_PID=$LEVEE_PID
start_levee "$WORK/b.toml" $LEV2; B_PID=$LEVEE_PID
sleep 1
: > "$WORK/lag.txt"
for i in $(seq 1 20); do
  ip="127.0.77.$i"
  curl -s -o /dev/null -X POST -H "Authorization: Bearer bench-admin-token-0123456789abcdef" "http://127.0.0.1:$ADM/blocks?cidr=$ip&ttl=60"
  t0=$(date +%s%N)
  for _ in $(seq 1 400); do
    curl -s -o /dev/null --max-time 1 --interface "$ip" "http://127.0.0.1:$LEV2/" || break
    sleep 0.005
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 )) >> "$WORK/lag.txt"
done
printf 'decision lag A -> B: median %s ms, max %s ms (sync_every 250 ms)\n' "$(median < "$WORK/lag.txt")" "$(sort -n "$WORK/lag.txt" | tail -1)"
stop_levee "$A_PID"; stop_levee "$B_PID"; stop_redis
