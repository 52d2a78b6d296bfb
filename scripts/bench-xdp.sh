#!/usr/bin/env bash
# Packets dropped per second per core: Levee's XDP filter (/32 hit, prefix
# hit among 20,000 prefixes, rate limit) vs an nftables netdev ingress drop
# rule vs an empty XDP drop program vs no filter, in one run. Frames are
# injected as XDP live frames (BPF_PROG_TEST_RUN) on one end of a veth pair
# between two namespaces this script creates and removes. Root only.
#
#   scripts/bench-xdp.sh [FRAMES_PER_RUN] [ROUNDS]
set -euo pipefail
FRAMES=${1:-5000000}
ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-xdp: run as root (BPF and namespaces)" >&2; exit 1; }
command -v nft >/dev/null || { echo "bench-xdp: install nftables (scripts/install-test-deps.sh)" >&2; exit 1; }
A=lvbench-a$$; B=lvbench-b$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add xb0 netns "$A" type veth peer name xb1 netns "$B"
ip -n "$A" addr add 10.78.0.1/24 dev xb0
ip -n "$B" addr add 10.78.0.2/24 dev xb1
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set xb0 up; ip -n "$B" link set xb1 up
cargo bench -p levee-xdp --bench xdp_filters --no-run -q 2>/dev/null
BIN=$(ls -t target/release/deps/xdp_filters-* | grep -v '\.d$' | head -1)
echo "kernel $(uname -r), $(nproc) cores; the bench is pinned to core 1"
ip netns exec "$A" taskset -c 1 "$BIN" --iface xb0 --dst 10.78.0.1 --frames "$FRAMES" --rounds "$ROUNDS"
