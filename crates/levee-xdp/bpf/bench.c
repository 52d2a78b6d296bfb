// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
// Reference programs for scripts/bench-xdp.sh: the cheapest possible XDP
// drop (the ceiling any filter can reach) and a pass-everything program
// (to inject frames into the stack for the nftables and no-filter runs).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int empty_drop(struct xdp_md *ctx) { return XDP_DROP; }

SEC("xdp")
int empty_pass(struct xdp_md *ctx) { return XDP_PASS; }
