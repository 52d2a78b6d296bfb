#!/usr/bin/env bash
# Benchmark (not a test): `levee hunt` with every SigmaHQ web/proxy rule over
# the real Apache log repeated N times, against `grep -F -i -f` with the
# rules' literal values (roughly what an analyst would otherwise run, and
# far less precise: no fields, no conditions). Same file, same run.
#
# Prints, as medians of ROUNDS rounds (order alternating by round):
#   - hunt on one core (taskset -c 0, --threads 1) against grep on one core;
#   - hunt on two cores (--threads 2) and its scaling over one core, next to
#     this machine's own scaling for a CPU-bound job (two `sha256sum` of a
#     cached file at once against one): a VM's "two cores" may not be two;
#   - each run's peak memory (resident, from /usr/bin/time);
#   - the median of each round's own ratio too: hunt and grep run back to
#     back in a round, so a VM's drift between rounds cancels out; and the
#     ratio of CPU time (user + system), which time stolen by the VM's
#     host does not inflate.
#
# Usage: scripts/bench-hunt.sh [copies] [rounds]   (default 100: 1,000,000 lines; 3)
set -euo pipefail
N=${1:-100}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA="$ROOT/../shared/data"
[ -d "$DATA/sigma" ] || { echo "needs ../shared/data (the third-party test material)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/levee-hunt-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && cargo build --release -q -p levee)
BIN="$ROOT/target/release/levee"
for _ in $(seq "$N"); do cat "$DATA/logs/elastic-apache/apache_logs"; done > "$WORK/access.log"
LINES=$(wc -l < "$WORK/access.log")
BYTES=$(stat -c %s "$WORK/access.log")
# Literal values of the rules (quoted YAML scalars under the detections), wildcards dropped.
grep -rhoE "^\s+- '[^']{4,}'" "$DATA/sigma" | sed -E "s/^\s+- '//; s/'$//; s/\*//g" | sort -u > "$WORK/patterns.txt"
echo "$LINES lines ($BYTES bytes), $(wc -l < "$WORK/patterns.txt") grep patterns" >&2
# Seconds, peak KiB and CPU seconds of a command (its output to a file: GNU
# grep stops at the first match when its output is /dev/null).
t() {
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" "$@" >"$WORK/out" 2>/dev/null || true
    tail -1 "$WORK/time" | awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}'
}
hunt1() { t taskset -c 0 "$BIN" hunt --threads 1 --sigma "$DATA/sigma" "$WORK/access.log"; }
hunt2() { t taskset -c 0,1 "$BIN" hunt --threads 2 --sigma "$DATA/sigma" "$WORK/access.log"; }
grep1() { t taskset -c 0 grep -c -F -i -f "$WORK/patterns.txt" "$WORK/access.log"; }
head -c 400000000 /dev/zero > "$WORK/zero"
sha1() { t taskset -c 0 sha256sum "$WORK/zero"; }
sha2() {
    local s e
    s=$(date +%s.%N)
    taskset -c 0 sha256sum "$WORK/zero" >/dev/null & taskset -c 1 sha256sum "$WORK/zero" >/dev/null; wait
    e=$(date +%s.%N)
    echo "$(echo "$e - $s" | bc) 0 0"
}
declare -a H1 H2 G1 S1 S2 M1 M2 R1 C1 CG
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        a=$(hunt1); b=$(hunt2); c=$(grep1)
    else
        c=$(grep1); b=$(hunt2); a=$(hunt1)
    fi
    read -r aw am ac <<< "$a"; read -r bw bm _ <<< "$b"; read -r cw _ cc <<< "$c"
    H1+=("$aw"); M1+=("$am"); C1+=("$ac"); H2+=("$bw"); M2+=("$bm"); G1+=("$cw"); CG+=("$cc")
    R1+=("$(echo "$cw / $aw" | bc -l)")
    S1+=("$(sha1 | cut -d' ' -f1)"); S2+=("$(sha2 | cut -d' ' -f1)")
    echo "round $r: hunt 1 core ${H1[-1]} s, 2 cores ${H2[-1]} s, grep ${G1[-1]} s; sha256sum x1 ${S1[-1]} s, x2 ${S2[-1]} s" >&2
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
h1=$(printf '%s\n' "${H1[@]}" | median); h2=$(printf '%s\n' "${H2[@]}" | median)
g1=$(printf '%s\n' "${G1[@]}" | median)
s1=$(printf '%s\n' "${S1[@]}" | median); s2=$(printf '%s\n' "${S2[@]}" | median)
m1=$(printf '%s\n' "${M1[@]}" | median); m2=$(printf '%s\n' "${M2[@]}" | median)
c1=$(printf '%s\n' "${C1[@]}" | median); cg=$(printf '%s\n' "${CG[@]}" | median)
printf '\n%d lines, %d bytes, medians of %d rounds\n' "$LINES" "$BYTES" "$ROUNDS"
printf 'levee hunt, 1 core:  %6.2f s  %8.0f lines/s  %6.1f MB/s  peak %d MiB\n' "$h1" "$(echo "$LINES / $h1" | bc -l)" "$(echo "$BYTES / $h1 / 1000000" | bc -l)" "$((m1 / 1024))"
printf 'grep -F -i, 1 core:  %6.2f s  %8.0f lines/s  %6.1f MB/s\n' "$g1" "$(echo "$LINES / $g1" | bc -l)" "$(echo "$BYTES / $g1 / 1000000" | bc -l)"
printf 'hunt throughput / grep throughput (1 core): %.2fx (median of the rounds'"'"' own ratios: %.2fx)\n' "$(echo "$g1 / $h1" | bc -l)" "$(printf '%s\n' "${R1[@]}" | median)"
printf 'CPU time (user + system), 1 core: hunt %.2f s, grep %.2f s: %.2fx\n' "$c1" "$cg" "$(echo "$cg / $c1" | bc -l)"
printf 'levee hunt, 2 cores: %6.2f s  %8.0f lines/s  peak %d MiB; %.2fx its 1-core throughput\n' "$h2" "$(echo "$LINES / $h2" | bc -l)" "$((m2 / 1024))" "$(echo "$h1 / $h2" | bc -l)"
printf 'this machine, 2 x sha256sum at once: %.2fx the throughput of one\n' "$(echo "2 * $s1 / $s2" | bc -l)"
