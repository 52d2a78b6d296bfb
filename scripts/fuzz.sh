#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each).
# Usage: scripts/fuzz.sh [seconds] [target...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the
# script sets RUSTC_BOOTSTRAP=1 so cargo-fuzz's instrumentation flags are accepted.
set -euo pipefail
SECS=${1:-60}; shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1
run() { # crate target
  local dir="$ROOT/crates/$1/fuzz"
  local corpus="$dir/corpus/$2"; mkdir -p "$corpus"
  local seeds="$dir/seeds/$2"; [ -d "$seeds" ] || seeds=""
  echo "== fuzz $1::$2 for ${SECS}s" >&2
  (cd "$ROOT/crates/$1" && cargo fuzz run --sanitizer none "$2" "$corpus" $seeds -- -max_total_time="$SECS" -rss_limit_mb=2048 2>&1 | tail -3)
}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_head response_head chunked target host fields proxy_header h2_meter tls_hello config log_line stix_pattern sigma_rule store_answer lapi_stream incident_record report_input xdp_packet)
for t in "${targets[@]}"; do
  case $t in
    config) run levee-config config ;;
    log_line|stix_pattern|sigma_rule) run levee-hunt "$t" ;;
    xdp_packet) run levee-xdp "$t" ;; # root: loads the XDP program
    store_answer) run levee-fleet "$t" ;;
    lapi_stream) run levee-crowdsec "$t" ;;
    incident_record) run levee-incident "$t" ;;
    report_input) run levee-report "$t" ;;
    *) run levee-http "$t" ;;
  esac
done
