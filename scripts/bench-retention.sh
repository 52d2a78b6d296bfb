#!/usr/bin/env bash
# Benchmark (not a test): the retention run and an erasure on big logs.
#
# 1. Sweep: GB one-GiB rotated copies of an access log, every record 40
#    days old, are deleted by `levee serve` (the access log's thread, at
#    start: each file hashed with SHA-256, recorded in the ledger, removed)
#    against the same job done by hand with coreutils, `sha256sum` then `rm`,
#    and the lower bound `rm` alone. The page cache is dropped before each
#    run when running as root (else the files may be cached: said below).
# 2. Erasure: one client's lines (1 in 1,000) removed from one GiB file by
#    `levee retention erase` (offline: no edge running) against
#    `grep -v -F` into a new file and `mv` (what a person would do, with no
#    ledger and no compressed files).
#
# Order alternates by round (ABBA). Medians are printed. Files are made
# under target/ (on disk, not tmpfs) and removed at the end.
#
# Usage: scripts/bench-retention.sh [GB] [rounds] [sweep,erase]
set -euo pipefail
GB=${1:-10}
ROUNDS=${2:-2}
PARTS=${3:-sweep,erase}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
echo "building levee (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p levee)
BIN="$ROOT/target/release/levee"
WORK=$(mktemp -d "$ROOT/target/bench-retention.XXXXXX")
trap 'pkill -f "$WORK/levee.toml" 2>/dev/null || true; rm -rf "$WORK"' EXIT
LOGS="$WORK/logs"
mkdir -p "$LOGS"
cold() {
    sync
    if [ "$(id -u)" = 0 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
[ "$(id -u)" = 0 ] && echo "page cache dropped before each run" >&2 || echo "not root: the page cache is NOT dropped (files may be cached)" >&2

# One GiB of JSON lines, records 40 days old; client 198.51.100.7 on 1 line in 1,000.
echo "making a 1 GiB master file..." >&2
python3 - "$WORK/master" <<'EOF'
import sys, time
ts = int((time.time() - 40 * 86400) * 1000)
lines = []
for i in range(1000):
    c = "198.51.100.7" if i == 500 else f"203.0.{(i // 250) % 256}.{i % 250 + 1}"
    lines.append(f'{{"ts_ms":{ts + i},"client":"{c}","site":"www","method":"GET","path":"/news/{i}?page=2","status":200,"bytes_in":0,"bytes_out":5120,"duration_us":311,"origin_us":216,"verdict":"allow","reason":"","tls":"TLSv1.3","ja4":"t13d1516h2_8daaf6152771_e5627efa2ab1","h2fp":null,"proto":"h2","request_id":"01HZX{i:08d}"}}\n')
block = "".join(lines).encode()
with open(sys.argv[1], "wb") as f:
    n = 0
    while n < (1 << 30):
        f.write(block)
        n += len(block)
EOF
MASTER_BYTES=$(stat -c %s "$WORK/master")
cat >"$WORK/levee.toml" <<EOF
[[listener]]
address = "127.0.0.1:0"
[admin]
enabled = false
[access_log]
path = "$LOGS/access.log"
[retention]
raw_days = 30
[[site]]
name = "www"
hosts = ["localhost"]
[[site.origin]]
address = "127.0.0.1:9"
EOF

make_files() {
    rm -f "$LOGS"/access.log* "$LOGS"/retention-ledger.jsonl
    for i in $(seq 1 "$GB"); do
        cp "$WORK/master" "$LOGS/access.log.$i"
        touch -d "40 days ago" "$LOGS/access.log.$i"
    done
}

now() { date +%s.%N; }

run_levee_sweep() {
    make_files
    cold
    local t0 t1
    t0=$(now)
    "$BIN" serve --config "$WORK/levee.toml" 2>>"$WORK/levee.err" &
    local pid=$!
    # Done when every copy is gone and the sweep's inventory is written.
    for _ in $(seq 1 60000); do
        if ! ls "$LOGS"/access.log.* >/dev/null 2>&1 && grep -q '"inventory"' "$LOGS/retention-ledger.jsonl" 2>/dev/null; then
            break
        fi
        sleep 0.01
    done
    t1=$(now)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local n
    n=$(grep -c '"file_deleted"' "$LOGS/retention-ledger.jsonl")
    [ "$n" = "$GB" ] || { echo "levee deleted $n of $GB files" >&2; exit 1; }
    echo "$t1 - $t0" | bc
}

run_coreutils_sweep() {
    make_files
    cold
    local t0 t1
    t0=$(now)
    sha256sum "$LOGS"/access.log.* >"$WORK/sums"
    rm "$LOGS"/access.log.*
    t1=$(now)
    echo "$t1 - $t0" | bc
}

run_rm_only() {
    make_files
    cold
    local t0 t1
    t0=$(now)
    find "$LOGS" -name 'access.log.*' -mtime +30 -delete
    t1=$(now)
    echo "$t1 - $t0" | bc
}

ERASE_CFG="$WORK/erase.toml"
sed "s|$LOGS/access.log|$LOGS/erase.log|" "$WORK/levee.toml" >"$ERASE_CFG"
run_levee_erase() {
    rm -f "$LOGS"/erase.log* "$LOGS"/retention-ledger.jsonl
    cp "$WORK/master" "$LOGS/erase.log"
    cold
    local t0 t1
    t0=$(now)
    "$BIN" retention erase --config "$ERASE_CFG" --address 198.51.100.7 --reason bench >"$WORK/erase.out"
    t1=$(now)
    grep -q "erased" "$WORK/erase.out" || { cat "$WORK/erase.out" >&2; exit 1; }
    echo "$t1 - $t0" | bc
}

run_grep_erase() {
    rm -f "$LOGS"/erase.log*
    cp "$WORK/master" "$LOGS/erase.log"
    cold
    local t0 t1
    t0=$(now)
    LC_ALL=C grep -v -F '"client":"198.51.100.7"' "$LOGS/erase.log" >"$LOGS/erase.log.tmp" || true
    mv "$LOGS/erase.log.tmp" "$LOGS/erase.log"
    t1=$(now)
    echo "$t1 - $t0" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -a LS CS RS LE GE
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS..." >&2
    if [[ $PARTS == *sweep* ]]; then
        if [ $((r % 2)) = 1 ]; then
            LS+=("$(run_levee_sweep)"); CS+=("$(run_coreutils_sweep)"); RS+=("$(run_rm_only)")
        else
            RS+=("$(run_rm_only)"); CS+=("$(run_coreutils_sweep)"); LS+=("$(run_levee_sweep)")
        fi
        echo "  levee sweep ${LS[-1]} s, sha256sum+rm ${CS[-1]} s, find -delete ${RS[-1]} s" >&2
    fi
    if [[ $PARTS == *erase* ]]; then
        if [ $((r % 2)) = 1 ]; then
            LE+=("$(run_levee_erase)"); GE+=("$(run_grep_erase)")
        else
            GE+=("$(run_grep_erase)"); LE+=("$(run_levee_erase)")
        fi
        echo "  levee erase ${LE[-1]} s, grep -v ${GE[-1]} s" >&2
    fi
done
total=$((GB * MASTER_BYTES))
if [[ $PARTS == *sweep* ]]; then
ls_m=$(printf '%s\n' "${LS[@]}" | median)
cs_m=$(printf '%s\n' "${CS[@]}" | median)
rs_m=$(printf '%s\n' "${RS[@]}" | median)
printf '\nretention sweep of %d files, %d bytes (medians of %d rounds):\n' "$GB" "$total" "$ROUNDS"
printf '  levee serve (hash, ledger, delete)   %8.2f s  %7.0f MB/s\n' "$ls_m" "$(echo "$total / $ls_m / 1000000" | bc -l)"
printf '  sha256sum + rm                       %8.2f s  %7.0f MB/s   levee/peer time %.2fx\n' "$cs_m" "$(echo "$total / $cs_m / 1000000" | bc -l)" "$(echo "$ls_m / $cs_m" | bc -l)"
printf '  find -mtime +30 -delete (no hash)    %8.2f s\n' "$rs_m"
fi
if [[ $PARTS == *erase* ]]; then
le_m=$(printf '%s\n' "${LE[@]}" | median)
ge_m=$(printf '%s\n' "${GE[@]}" | median)
printf 'erasure of 1 client (1 line in 1,000) from %d bytes:\n' "$MASTER_BYTES"
printf '  levee retention erase                %8.2f s  %7.0f MB/s\n' "$le_m" "$(echo "$MASTER_BYTES / $le_m / 1000000" | bc -l)"
printf '  grep -v -F + mv                      %8.2f s  %7.0f MB/s   levee/peer time %.2fx\n' "$ge_m" "$(echo "$MASTER_BYTES / $ge_m / 1000000" | bc -l)" "$(echo "$le_m / $ge_m" | bc -l)"
fi
