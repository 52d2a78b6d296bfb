#!/usr/bin/env bash
# Benchmark (not a test): levee vs nginx vs HAProxy as reverse proxies in front
# of the same origin, on loopback, in one run.
#
# The proxy under test is pinned to core 0; the load generator and the origin
# share core 1. Each proxy has its rate/connection limiting configured so that
# the benchmark's own traffic is not limited (nginx limit_req/limit_conn,
# HAProxy stick table), and levee runs with all of its defaults (every defense on).
# All three write an access log to a file. Levee is started afresh for each
# measurement (its adaptive defense learns from traffic: a run must not be
# judged by what the previous run taught it), and every run counts its
# non-2xx answers: a figure with refusals in it is not a proxy's speed.
#
# Usage: scripts/bench-proxy.sh [duration_seconds] [connections] [rounds]
set -euo pipefail
DUR=${1:-10}
CONNS=${2:-64}
ROUNDS=${3:-3}
ulimit -n 65536 2>/dev/null || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; sleep 0.3' EXIT
for t in nginx haproxy wrk h2load taskset; do
  command -v $t >/dev/null || { echo "missing $t: run scripts/install-test-deps.sh" >&2; exit 2; }
done
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
LEVEE="$ROOT/target/release/levee"

ORIGIN=18101; NGINX=18102; NGINX_H2=18112; HAP=18103; HAP_H2=18113; LEV=18104

mkdir -p "$WORK/origin" "$WORK/nginx"
cat > "$WORK/origin.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN reuseport; location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
EOF
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 8192; }
http {
  access_log $WORK/nginx-access.log combined buffer=64k flush=1s;
  limit_req_zone \$binary_remote_addr zone=perip:10m rate=1000000r/s;
  limit_conn_zone \$binary_remote_addr zone=connip:10m;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 256; keepalive_requests 1000000; }
  keepalive_requests 1000000;
  client_header_timeout 10s; client_body_timeout 10s; send_timeout 10s;
  server { listen 127.0.0.1:$NGINX; listen 127.0.0.1:$NGINX_H2 http2;
    location / { limit_req zone=perip burst=1000000 nodelay; limit_conn connip 60000;
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } } }
EOF
cat > "$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 5000
  log stdout format raw local0 info
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAP
  bind 127.0.0.1:$HAP_H2 proto h2
  stick-table type ip size 1m expire 30s store http_req_rate(10s),conn_cur
  tcp-request connection track-sc0 src
  tcp-request connection reject if { sc_conn_cur(0) gt 100000 }
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100000000 }
  option forwardfor
  log global
  option httplog
  default_backend be
backend be
  http-reuse always
  server o1 127.0.0.1:$ORIGIN maxconn 1000
EOF
cat > "$WORK/levee.toml" <<EOF
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
EOF

taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK/origin" &
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
taskset -c 0 haproxy -f "$WORK/haproxy.cfg" > "$WORK/haproxy-access.log" 2>"$WORK/haproxy.err" &
start_levee() {
  taskset -c 0 "$LEVEE" serve --config "$WORK/levee.toml" --workers 1 2>>"$WORK/levee.err" &
  LEVEE_PID=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$LEV/" && return 0; sleep 0.1; done
  echo "levee not answering" >&2; cat "$WORK/levee.err" >&2; exit 1
}
stop_levee() { kill "$LEVEE_PID" 2>/dev/null || true; wait "$LEVEE_PID" 2>/dev/null || true; }
sleep 1.5
start_levee
for p in $ORIGIN $NGINX $HAP $LEV; do
  curl -sf -o /dev/null "http://127.0.0.1:$p/" || { echo "port $p not answering" >&2; cat "$WORK"/*.err >&2; exit 1; }
done

pid_on_port() { ss -ltnpH "sport = :$1" | sed -E 's/.*pid=([0-9]+).*/\1/' | head -1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# nginx: the worker (child of the master) does the work.
worker_of() { local p; p=$(pid_on_port "$1"); local c; c=$(pgrep -P "$p" | head -1); echo "${c:-$p}"; }

run_wrk() { # name port -> "rps p50ms p99ms cpu%"
  local pid; pid=$(worker_of "$2")
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/" 2>&1)
  local t1; t1=$(cpu_ticks "$pid")
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local p50; p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  local p99; p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  local errs; errs=$(echo "$out" | awk '/Socket errors/ {print}' | tr '\n' ' ')
  local cpu; cpu=$(echo "($t1 - $t0) / $DUR" | bc -l)
  printf '%s %s %s %s %.0f %s %s\n' "$1" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "$cpu" "${non2xx:-0}" "$errs"
}
run_h2() { # name port
  local pid; pid=$(worker_of "$2")
  local t0; t0=$(cpu_ticks "$pid")
  local n=$(( 40000 * DUR ))
  local out; out=$(taskset -c 1 h2load -c 16 -m 10 -D "$DUR" "http://127.0.0.1:$2/" 2>&1)
  local t1; t1=$(cpu_ticks "$pid")
  local rps; rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  local mean; mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
  local failed; failed=$(echo "$out" | awk '/^requests:/ {print $10}')
  # status codes: A 2xx, B 3xx, C 4xx, D 5xx
  local non2xx; non2xx=$(echo "$out" | awk '/^status codes:/ {print $5 + $7 + $9}')
  local cpu; cpu=$(echo "($t1 - $t0) / $DUR" | bc -l)
  printf '%s %s mean=%s %.0f %s %s\n' "$1" "$rps" "$mean" "$cpu" "$(( ${non2xx:-0} + ${failed:-0} ))" "failed=${failed:-0}"
}
to_ms() { local v=$1; case $v in *us) echo "$(echo "${v%us} / 1000" | bc -l | xargs printf '%.3f')";; *ms) echo "${v%ms}";; *s) echo "$(echo "${v%s} * 1000" | bc -l)";; *) echo "$v";; esac; }

echo "# HTTP/1.1 keep-alive: wrk -t1 -c$CONNS -d${DUR}s (core 1) -> proxy (core 0) -> nginx origin (core 1); $ROUNDS rounds"
echo "# name rps p50_ms p99_ms proxy_cpu_% non_2xx"
stop_levee
: > "$WORK/h1.txt"
for r in $(seq 1 "$ROUNDS"); do
  for pair in "levee $LEV" "nginx $NGINX" "haproxy $HAP"; do
    set -- $pair
    if [ "$1" = levee ]; then start_levee; fi
    run_wrk "$1" "$2" | tee -a "$WORK/h1.txt"
    if [ "$1" = levee ]; then stop_levee; fi
  done
done
echo "# HTTP/2 (h2c prior knowledge): h2load -c16 -m10 -D ${DUR}s"
echo "# name rps mean proxy_cpu_% non_2xx"
: > "$WORK/h2.txt"
for r in $(seq 1 "$ROUNDS"); do
  for pair in "levee $LEV" "nginx $NGINX_H2" "haproxy $HAP_H2"; do
    set -- $pair
    if [ "$1" = levee ]; then start_levee; fi
    run_h2 "$1" "$2" | tee -a "$WORK/h2.txt"
    if [ "$1" = levee ]; then stop_levee; fi
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "## medians over $ROUNDS rounds"
for name in levee nginx haproxy; do
  rps=$(awk -v n=$name '$1==n {print $2}' "$WORK/h1.txt" | median)
  p50=$(awk -v n=$name '$1==n {print $3}' "$WORK/h1.txt" | median)
  p99=$(awk -v n=$name '$1==n {print $4}' "$WORK/h1.txt" | median)
  cpu=$(awk -v n=$name '$1==n {print $5}' "$WORK/h1.txt" | median)
  h2=$(awk -v n=$name '$1==n {print $2}' "$WORK/h2.txt" | median)
  bad1=$(awk -v n=$name '$1==n {s+=$6} END {print s+0}' "$WORK/h1.txt")
  bad2=$(awk -v n=$name '$1==n {s+=$5} END {print s+0}' "$WORK/h2.txt")
  printf 'h1 %-8s rps=%-10s p50=%-7sms p99=%-7sms cpu=%s%% non2xx=%s   h2 rps=%s non2xx=%s\n' $name "$rps" "$p50" "$p99" "$cpu" "$bad1" "$h2" "$bad2"
  eval "RPS_$name=$rps; P99_$name=$p99; H2_$name=$h2"
done
BEST_H2=$(echo "if ($H2_nginx > $H2_haproxy) $H2_nginx else $H2_haproxy" | bc -l)
printf '\nlevee h2 / best of nginx and HAProxy = %.2f\n' "$(echo "$H2_levee / $BEST_H2" | bc -l)"
printf 'ratios: levee/nginx rps=%.2f p99=%.2f h2=%.2f | levee/haproxy rps=%.2f p99=%.2f h2=%.2f\n' \
  "$(echo "$RPS_levee / $RPS_nginx" | bc -l)" "$(echo "$P99_levee / $P99_nginx" | bc -l)" "$(echo "$H2_levee / $H2_nginx" | bc -l)" \
  "$(echo "$RPS_levee / $RPS_haproxy" | bc -l)" "$(echo "$P99_levee / $P99_haproxy" | bc -l)" "$(echo "$H2_levee / $H2_haproxy" | bc -l)"
echo "(p99 ratio: lower is better for levee)"
