# Sourced by the A/B benchmarks (bench-ab.sh, bench-pseudonymize.sh): runs
# two variants of levee under the same wrk load, round by round in ABBA
# order (the second run of a round is measurably slower on this VM), each
# started afresh, and prints req/s, CPU time per request (user + system,
# from /proc) and non-2xx answers, then the medians and the ratios B/A.
#
# The caller sets ROOT, ROUNDS and DUR, calls `ab_setup ORIGIN_PORT LEVEE_PORT`
# (checks the tools, makes WORK, starts the nginx origin), writes its
# levee configurations with `ab_levee_config FILE LOG [EXTRA]`, and defines
# `ab_start LABEL`, which starts that variant in the background.
ab_setup() { # origin_port levee_port
  ORIGIN=$1; LEV=$2
  for t in nginx wrk taskset bc curl; do
    command -v $t >/dev/null || { echo "missing $t: run scripts/install-test-deps.sh --bench" >&2; exit 2; }
  done
  WORK=$(mktemp -d /tmp/levee-ab.XXXXXX)
  trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; ab_cleanup 2>/dev/null || true' EXIT
  cat > "$WORK/origin.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
CONF
  mkdir -p "$WORK/o"
  taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK/o" &
  sleep 1
}
ab_levee_config() { # file log [extra access_log keys]
  cat > "$1" <<CONF
[[listener]]
address = "127.0.0.1:$LEV"
[admin]
address = "127.0.0.1:0"
[access_log]
path = "$2"
${3:-}
[[site]]
name = "bench"
hosts = ["127.0.0.1", "localhost"]
[[site.origin]]
address = "127.0.0.1:$ORIGIN"
CONF
}
ab_run() { # A B
  local a=$1 b=$2
  : > "$WORK/runs.txt"
  echo "# wrk -t1 -c64 -d${DUR}s (core 1) -> levee --workers 1 (core 0) -> nginx origin (core 1)"
  echo "# variant rps cpu_us_per_request non_2xx"
  local tck; tck=$(getconf CLK_TCK)
  for r in $(seq 1 "$ROUNDS"); do
    local order="$a $b"; [ $((r % 2)) -eq 0 ] && order="$b $a"
    for v in $order; do
      ab_start "$v"
      local pid=$!
      for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$LEV/" && break; sleep 0.1; done
      local t0 t1 out n rps bad us
      t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
      out=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$LEV/")
      t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
      n=$(echo "$out" | awk '/requests in/ {print $1}')
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
      us=$(echo "($t1 - $t0) * 1000000 / $tck / $n" | bc -l | xargs printf '%.2f')
      echo "$v $rps $us ${bad:-0}" | tee -a "$WORK/runs.txt"
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
  median() { sort -n | awk '{x[NR]=$1} END {if (NR%2) print x[(NR+1)/2]; else print (x[NR/2]+x[NR/2+1])/2}'; }
  local ra rb ua ub
  ra=$(awk -v v="$a" '$1==v {print $2}' "$WORK/runs.txt" | median)
  rb=$(awk -v v="$b" '$1==v {print $2}' "$WORK/runs.txt" | median)
  ua=$(awk -v v="$a" '$1==v {print $3}' "$WORK/runs.txt" | median)
  ub=$(awk -v v="$b" '$1==v {print $3}' "$WORK/runs.txt" | median)
  echo
  printf 'medians: %s rps=%s cpu=%sus/req | %s rps=%s cpu=%sus/req\n' "$a" "$ra" "$ua" "$b" "$rb" "$ub"
  printf '%s / %s: rps %.2f, cpu per request %.2f\n' "$b" "$a" "$(echo "$rb / $ra" | bc -l)" "$(echo "$ub / $ua" | bc -l)"
}
