#!/usr/bin/env bash
# Benchmark (not a test): the adaptive defense's acceptance drills against
# levee, nginx and HAProxy in one run, each in front of the same instrumented
# demo origin (which counts what reaches it), with the same drill.
#
#   nginx:   limit_req (20 r/s per address, burst 40, nodelay) and limit_conn
#            (20 per address), as nginx's documentation suggests for
#            "limiting the rate of requests"; the upstream capped at the
#            origin's capacity with max_conns.
#   HAProxy: a stick table per source (http_req_rate over 10 s > 200 denied
#            with 429; more than 20 concurrent connections rejected), the
#            server capped with maxconn.
#   levee:   its defaults (adaptive defense on) plus the micro-cache, the
#            origin capacity as max_concurrent_per_origin.
#
# Origin capacity: 64 concurrent requests for all three. Each proxy runs on
# one core (taskset -c 0, one worker); the drill and the origin share core 1.
# The drill warms up with legitimate traffic only (levee learns its baseline
# then), then attacks at the highest rate it can, with 50 legitimate clients.
#
# Usage: scripts/bench-defense.sh [attack_seconds] [warmup_seconds] [scenarios...]
set -euo pipefail
DUR=${1:-10}
WARM=${2:-12}
shift 2 2>/dev/null || shift $# 2>/dev/null || true
SCENARIOS=${*:-http-flood carpet-bomb cache-bust dogpile}
ulimit -n 65536 2>/dev/null || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/levee-defense.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; sleep 0.3' EXIT
for t in nginx haproxy taskset python3; do
  command -v $t >/dev/null || { echo "missing $t: run scripts/install-test-deps.sh --bench" >&2; exit 2; }
done
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
LEVEE="$ROOT/target/release/levee"
TOKEN=bench-drill-token
ORIGIN=18201; NGINX=18202; HAP=18203; LEV=18204; ADMIN=18205
CAP=64

cat > "$WORK/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 16384; }
http {
  access_log $WORK/nginx-access.log combined buffer=64k flush=1s;
  limit_req_zone \$binary_remote_addr zone=perip:10m rate=20r/s;
  limit_conn_zone \$binary_remote_addr zone=connip:10m;
  limit_req_status 429; limit_conn_status 429;
  upstream origin { server 127.0.0.1:$ORIGIN max_conns=$CAP; keepalive 64; }
  server { listen 127.0.0.1:$NGINX;
    location = /.well-known/levee-drill { return 200 "$TOKEN\n"; }
    location / { limit_req zone=perip burst=40 nodelay; limit_conn connip 20;
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_next_upstream off; } } }
EOF
cat > "$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
  log stdout format raw local0 info
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout queue 1s
  timeout http-request 10s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAP
  stick-table type ip size 1m expire 30s store http_req_rate(10s),conn_cur
  tcp-request connection track-sc0 src
  tcp-request connection reject if { sc_conn_cur(0) gt 20 }
  http-request return status 200 content-type text/plain string "$TOKEN" if { path /.well-known/levee-drill }
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 200 }
  option forwardfor
  default_backend be
backend be
  http-reuse always
  server o1 127.0.0.1:$ORIGIN maxconn $CAP
EOF
cat > "$WORK/levee.toml" <<EOF
[[listener]]
address = "127.0.0.1:$LEV"
[admin]
address = "127.0.0.1:$ADMIN"
[access_log]
path = "$WORK/levee-access.log"
[drill]
token = "$TOKEN"
[[site]]
name = "bench"
hosts = ["127.0.0.1"]
max_concurrent_per_origin = $CAP
queue = 64
[[site.origin]]
address = "127.0.0.1:$ORIGIN"
[site.cache]
enabled = true
keep_params = ["q"]
EOF

start_proxy() {
  case $1 in
    levee) taskset -c 0 "$LEVEE" serve --config "$WORK/levee.toml" --workers 1 >/dev/null 2>"$WORK/levee.err" & ;;
    nginx) taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" >/dev/null 2>&1 & ;;
    haproxy) taskset -c 0 haproxy -f "$WORK/haproxy.cfg" >/dev/null 2>&1 & ;;
  esac
  sleep 1.5
}
port_of() { case $1 in levee) echo $LEV;; nginx) echo $NGINX;; haproxy) echo $HAP;; esac; }

echo "scenario,proxy,attack_rps,legit_success,legit_p99_warmup_ms,legit_p99_attack_ms,attack_answered_2xx,after_mitigation,time_to_mitigate_s,origin_requests,origin_max_in_flight" > "$WORK/results.csv"
for sc in $SCENARIOS; do
  for p in levee nginx haproxy; do
    taskset -c 1 "$LEVEE" demo-origin --listen 127.0.0.1:$ORIGIN 2>/dev/null &
    OPID=$!
    start_proxy $p
    echo "== $sc vs $p" >&2
    taskset -c 1 "$LEVEE" drill --target "http://127.0.0.1:$(port_of $p)/" --scenario "$sc" \
      --token "$TOKEN" --warmup "$WARM" --duration "$DUR" --legit 50 --workers 1 \
      --origin 127.0.0.1:$ORIGIN --json "$WORK/$sc-$p.json" >"$WORK/$sc-$p.out" 2>&1 || true
    python3 - "$WORK/$sc-$p.json" "$sc" "$p" >> "$WORK/results.csv" <<'PY' || echo "$sc,$p,drill failed: see $WORK/$sc-$p.out" >> "$WORK/results.csv"
import json, sys
d = json.load(open(sys.argv[1]))["summary"]
f = lambda k, n=3: "" if d.get(k) is None else (f"{d[k]:.{n}f}" if isinstance(d[k], float) else str(d[k]))
print(",".join([sys.argv[2], sys.argv[3], f("attack_rate", 0), f("legit_success_during_attack", 4),
  f("legit_p99_warmup_ms", 2), f("legit_p99_attack_ms", 2), f("attack_passed_ratio", 4),
  f("attack_passed_ratio_after_mitigation", 4), f("time_to_mitigate_s"), f("origin_requests"), f("origin_max_in_flight")]))
PY
    case $p in
      levee) pkill -f "$WORK/levee.toml" || true ;;
      nginx) kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true ;;
      haproxy) pkill -f "$WORK/haproxy.cfg" || true ;;
    esac
    kill $OPID 2>/dev/null || true
    sleep 1
  done
done
echo
column -s, -t < "$WORK/results.csv"
echo
echo "(raw results: $WORK)"
