// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
// Levee's XDP packet filter. Per packet, in order, keeping the common path
// short: parse Ethernet (and up to two VLAN tags), IPv4 or IPv6 with sanity
// checks (malformed packets dropped and counted by reason); drop non-first
// fragments (configurable); allow list (LPM trie); exact source block list
// (hash); blocked prefixes (LPM trie, skipped when empty); invalid TCP flag
// combinations; UDP from reflection source ports towards non-service ports;
// per-source packet rate limit with separate budgets for SYNs and for all
// packets (LRU hash, coarse windows). Everything else passes to the kernel.
// Counters per reason in a per-CPU array.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum reason {
    R_PASS = 0,
    R_MALFORMED_ETH,
    R_MALFORMED_IP,
    R_MALFORMED_L4,
    R_FRAGMENT,
    R_ALLOWED,
    R_BLOCKED_ADDR,
    R_BLOCKED_NET,
    R_TCP_FLAGS,
    R_REFLECTION,
    R_RATE_SYN,
    R_RATE_PKT,
    R_NON_IP,
    R_MAX,
};

struct config {
    __u32 drop_fragments;  // 1: drop non-first fragments
    __u32 net_blocks;      // number of blocked prefixes (0: skip the trie)
    __u32 syn_budget;      // SYNs per window per source (0: off)
    __u32 pkt_budget;      // packets per window per source (0: off)
    __u64 window_ns;
};

struct lpm_v4 { __u32 prefixlen; __u32 addr; };
struct lpm_v6 { __u32 prefixlen; __u8 addr[16]; };
struct addr6 { __u8 addr[16]; };
struct rate { __u64 start; __u32 pkts; __u32 syns; };

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct config); } CONFIG SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, R_MAX); __type(key, __u32); __type(value, __u64); } STATS SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __type(key, struct lpm_v4); __type(value, __u8); __uint(map_flags, BPF_F_NO_PREALLOC); } ALLOW_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __type(key, struct lpm_v6); __type(value, __u8); __uint(map_flags, BPF_F_NO_PREALLOC); } ALLOW_V6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1048576); __type(key, __u32); __type(value, __u64); } BLOCK_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 262144); __type(key, struct addr6); __type(value, __u64); } BLOCK_V6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 262144); __type(key, struct lpm_v4); __type(value, __u64); __uint(map_flags, BPF_F_NO_PREALLOC); } BLOCK_NET_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 65536); __type(key, struct lpm_v6); __type(value, __u64); __uint(map_flags, BPF_F_NO_PREALLOC); } BLOCK_NET_V6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u16); __type(value, __u8); } REFLECT_PORTS SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u16); __type(value, __u8); } SERVICE_PORTS SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 262144); __type(key, struct addr6); __type(value, struct rate); } RATE SEC(".maps");

static __always_inline int count(__u32 r, int verdict) {
    __u64 *c = bpf_map_lookup_elem(&STATS, &r);
    if (c)
        *c += 1;
    return verdict;
}

// A block entry holds its expiry in monotonic ns (0: never); bit 63 marks
// entries the edge mirrors (the controller's bookkeeping, not a time).
#define OWNER_BIT (1ULL << 63)
static __always_inline int live(__u64 *exp, __u64 now) {
    if (!exp)
        return 0;
    __u64 e = *exp & ~OWNER_BIT;
    return e == 0 || e > now;
}

#define VLAN_MAX 2

SEC("xdp")
int levee_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    struct config *cfg = bpf_map_lookup_elem(&CONFIG, &zero);
    if (!cfg)
        return XDP_PASS;
    __u64 now = bpf_ktime_get_ns();

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return count(R_MALFORMED_ETH, XDP_DROP);
    __u16 proto = eth->h_proto;
    void *cur = eth + 1;
#pragma unroll
    for (int i = 0; i < VLAN_MAX; i++) {
        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
            break;
        struct { __u16 tci; __u16 proto; } *vlan = cur;
        if ((void *)(vlan + 1) > end)
            return count(R_MALFORMED_ETH, XDP_DROP);
        proto = vlan->proto;
        cur = vlan + 1;
    }

    struct addr6 src = {};
    __u8 l4 = 0;
    void *l4h = 0;
    int v6 = 0;
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = cur;
        if ((void *)(ip + 1) > end)
            return count(R_MALFORMED_IP, XDP_DROP);
        if (ip->version != 4 || ip->ihl < 5)
            return count(R_MALFORMED_IP, XDP_DROP);
        __u32 hl = ip->ihl * 4;
        __u16 tot = bpf_ntohs(ip->tot_len);
        if (tot < hl || (void *)ip + tot > end)
            return count(R_MALFORMED_IP, XDP_DROP);
        __u16 frag = bpf_ntohs(ip->frag_off);
        if ((frag & 0x1fff) != 0 && cfg->drop_fragments)
            return count(R_FRAGMENT, XDP_DROP);
        // v4-mapped: ::ffff:a.b.c.d
        src.addr[10] = 0xff;
        src.addr[11] = 0xff;
        __builtin_memcpy(&src.addr[12], &ip->saddr, 4);
        struct lpm_v4 k = { .prefixlen = 32, .addr = ip->saddr };
        if (bpf_map_lookup_elem(&ALLOW_V4, &k))
            return count(R_ALLOWED, XDP_PASS);
        if (live(bpf_map_lookup_elem(&BLOCK_V4, &ip->saddr), now))
            return count(R_BLOCKED_ADDR, XDP_DROP);
        if (cfg->net_blocks && live(bpf_map_lookup_elem(&BLOCK_NET_V4, &k), now))
            return count(R_BLOCKED_NET, XDP_DROP);
        if ((frag & 0x1fff) != 0)
            return count(R_PASS, XDP_PASS); // a later fragment has no L4 header
        l4 = ip->protocol;
        l4h = (void *)ip + hl;
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = cur;
        if ((void *)(ip6 + 1) > end)
            return count(R_MALFORMED_IP, XDP_DROP);
        if (ip6->version != 6)
            return count(R_MALFORMED_IP, XDP_DROP);
        if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
            return count(R_MALFORMED_IP, XDP_DROP);
        v6 = 1;
        __builtin_memcpy(src.addr, &ip6->saddr, 16);
        l4 = ip6->nexthdr;
        l4h = ip6 + 1;
        if (l4 == IPPROTO_FRAGMENT) {
            struct { __u8 nh; __u8 r; __u16 off; __u32 id; } *fh = l4h;
            if ((void *)(fh + 1) > end)
                return count(R_MALFORMED_IP, XDP_DROP);
            if ((bpf_ntohs(fh->off) & 0xfff8) != 0) {
                if (cfg->drop_fragments)
                    return count(R_FRAGMENT, XDP_DROP);
                l4 = 0; // no L4 header in a later fragment
            } else {
                l4 = fh->nh;
            }
            l4h = fh + 1;
        }
        struct lpm_v6 k = { .prefixlen = 128 };
        __builtin_memcpy(k.addr, src.addr, 16);
        if (bpf_map_lookup_elem(&ALLOW_V6, &k))
            return count(R_ALLOWED, XDP_PASS);
        if (live(bpf_map_lookup_elem(&BLOCK_V6, &src), now))
            return count(R_BLOCKED_ADDR, XDP_DROP);
        if (cfg->net_blocks && live(bpf_map_lookup_elem(&BLOCK_NET_V6, &k), now))
            return count(R_BLOCKED_NET, XDP_DROP);
    } else {
        return count(R_NON_IP, XDP_PASS);
    }

    int syn = 0;
    if (l4 == IPPROTO_TCP) {
        struct tcphdr *t = l4h;
        if ((void *)(t + 1) > end)
            return count(R_MALFORMED_L4, XDP_DROP);
        if (t->doff < 5 || (void *)t + t->doff * 4 > end)
            return count(R_MALFORMED_L4, XDP_DROP);
        __u8 f = ((__u8 *)t)[13];
        // FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20
        if ((f & 0x03) == 0x03 || (f & 0x06) == 0x06 || (f & 0x3f) == 0 || (f & 0x29) == 0x29)
            return count(R_TCP_FLAGS, XDP_DROP);
        syn = (f & 0x12) == 0x02;
    } else if (l4 == IPPROTO_UDP) {
        struct udphdr *u = l4h;
        if ((void *)(u + 1) > end)
            return count(R_MALFORMED_L4, XDP_DROP);
        __u16 sp = bpf_ntohs(u->source), dp = bpf_ntohs(u->dest);
        if (bpf_map_lookup_elem(&REFLECT_PORTS, &sp) && !bpf_map_lookup_elem(&SERVICE_PORTS, &dp))
            return count(R_REFLECTION, XDP_DROP);
    }

    if (cfg->pkt_budget || cfg->syn_budget) {
        struct rate *r = bpf_map_lookup_elem(&RATE, &src);
        if (!r) {
            struct rate fresh = { .start = now, .pkts = 1, .syns = syn };
            bpf_map_update_elem(&RATE, &src, &fresh, BPF_ANY);
        } else {
            if (now - r->start > cfg->window_ns) {
                r->start = now;
                r->pkts = 0;
                r->syns = 0;
            }
            r->pkts += 1;
            r->syns += syn;
            if (syn && cfg->syn_budget && r->syns > cfg->syn_budget)
                return count(R_RATE_SYN, XDP_DROP);
            if (cfg->pkt_budget && r->pkts > cfg->pkt_budget)
                return count(R_RATE_PKT, XDP_DROP);
        }
    }
    (void)v6;
    return count(R_PASS, XDP_PASS);
}
