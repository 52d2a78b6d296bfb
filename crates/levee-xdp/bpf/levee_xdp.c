// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
// Levee's XDP packet filter. Per packet, in order, keeping the common path
// short: parse Ethernet (and up to two VLAN tags), IPv4 or IPv6 with sanity
// checks (malformed packets dropped and counted by reason); drop non-first
// fragments (configurable); allow list (LPM trie); exact source block list
// (hash); blocked prefixes (one hash probe per prefix length in use); invalid TCP flag
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
    R_SP_SYNACK,   // SYN to a proxied port answered from XDP with a cookie
    R_SP_COOKIE,   // ACK with a valid cookie passed to the kernel's SYNPROXY
    R_SP_BAD,      // non-SYN to a proxied port without a connection or cookie
    R_MAX,
};

#define LENS 32

struct config {
    __u32 drop_fragments;  // 1: drop non-first fragments
    __u32 n_lens4;         // distinct blocked IPv4 prefix lengths in lens4 (0: none)
    __u32 syn_budget;      // SYNs per window per source (0: off)
    __u32 pkt_budget;      // packets per window per source (0: off)
    __u64 window_ns;
    __u32 allow_entries;   // entries in the allow tries (0: skip them)
    __u32 n_lens6;         // distinct blocked IPv6 prefix lengths in lens6
    __u8 lens4[LENS];      // the blocked prefix lengths, one hash lookup each
    __u8 lens6[LENS];
    __u32 synproxy;        // 1: answer SYNs to SYNPROXY_PORTS from XDP
    __u16 sp_mss;          // MSS advertised in those SYN-ACKs
    __u8 sp_wscale;        // window scale advertised (the server's)
    __u8 pad1;
    __u32 ifindex;         // the interface it is attached to (for the controller)
    __u32 pad;
};

struct lpm_v4 { __u32 prefixlen; __u32 addr; };
struct lpm_v6 { __u32 prefixlen; __u8 addr[16]; };
struct addr6 { __u8 addr[16]; };
struct rate { __u64 start; __u32 pkts; __u32 syns; };
// A block entry: expiry (monotonic ns, 0 = never; bit 63 marks entries the
// edge mirrors) and packets dropped by it (updated without atomics: an
// estimate when several CPUs hit the same entry).
struct block { __u64 expires; __u64 hits; };

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct config); } CONFIG SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, R_MAX); __type(key, __u32); __type(value, __u64); } STATS SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __type(key, struct lpm_v4); __type(value, __u8); __uint(map_flags, BPF_F_NO_PREALLOC); } ALLOW_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __type(key, struct lpm_v6); __type(value, __u8); __uint(map_flags, BPF_F_NO_PREALLOC); } ALLOW_V6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1048576); __type(key, __u32); __type(value, struct block); } BLOCK_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 262144); __type(key, struct addr6); __type(value, struct block); } BLOCK_V6 SEC(".maps");
// Blocked prefixes: one hash keyed by (length, masked address), probed once
// per length in use. With few distinct lengths (the usual case: /24s, /16s,
// /48s, /64s) this is a few hash lookups, much cheaper than an LPM trie walk.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 262144); __type(key, struct lpm_v4); __type(value, struct block); } BLOCK_NET_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, struct lpm_v6); __type(value, struct block); } BLOCK_NET_V6 SEC(".maps");
// UDP ports as bitmaps (port p is bit p%64 of word p/64): an array lookup
// the verifier inlines, cheaper than a hash probe on every UDP packet.
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } REFLECT_PORTS SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } SERVICE_PORTS SEC(".maps");
// Per-source rate windows: IPv4 sources keyed by their 4 bytes (a cheaper
// hash), IPv6 by 16.
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 262144); __type(key, __u32); __type(value, struct rate); } RATE_V4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 65536); __type(key, struct addr6); __type(value, struct rate); } RATE SEC(".maps");

// TCP ports whose handshakes the XDP SYN proxy answers (bitmap as above).
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } SYNPROXY_PORTS SEC(".maps");

static __always_inline int port_in(void *map, __u16 port) {
    __u32 w = port >> 6;
    __u64 *bits = bpf_map_lookup_elem(map, &w);
    return bits && (*bits >> (port & 63)) & 1;
}

static __always_inline int count(__u32 r, int verdict) {
    __u64 *c = bpf_map_lookup_elem(&STATS, &r);
    if (c)
        *c += 1;
    return verdict;
}

// The clock is read only when needed, and coarsely (a jiffy is plenty for
// expiries and rate windows; the precise clock costs more than a lookup).
#define OWNER_BIT (1ULL << 63)
static __always_inline __u64 clock(__u64 *now) {
    if (!*now)
        *now = bpf_ktime_get_coarse_ns();
    return *now;
}

static __always_inline int live(struct block *b, __u64 *now) {
    if (!b)
        return 0;
    __u64 e = b->expires & ~OWNER_BIT;
    if (e == 0 || e > clock(now)) {
        b->hits++;
        return 1;
    }
    return 0;
}

#define VLAN_MAX 2

// ---- XDP SYN proxy (IPv4 and IPv6) --------------------------------------------------
// A SYN to a proxied port is answered here: the SYN-ACK carries a kernel SYN
// cookie (bpf_tcp_raw_gen_syncookie_ipv4, the secret the kernel's own
// SYNPROXY checks) and, when the client sent timestamps, its window scale and
// SACK encoded in the timestamp as the kernel does. Nothing is allocated per
// SYN. A later packet passes when a socket exists for its 4-tuple or when it
// is an ACK with a valid cookie (the kernel's SYNPROXY, set up by nftables,
// then opens the connection to the local server); anything else is dropped.

static __always_inline __u16 csum_fold(__u32 s) {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return (__u16)~s;
}

// Sum of big-endian 16-bit words of buf[0..len) (len even, <= 64).
static __always_inline __u32 csum_words(__u8 *buf, __u32 len) {
    __u32 s = 0;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        if (i * 2 < len)
            s += ((__u32)buf[i * 2] << 8) | buf[i * 2 + 1];
    }
    return s;
}

struct opts {
    __u8 tcp[64];
    __u32 i, len;
    __u32 ws_ok, ws, sack, ts_ok, tsval;
};

// One TCP option of a SYN: returns 1 to stop.
static long opt_step(__u64 n, struct opts *o) {
    __u32 i = o->i;
    if (i >= o->len || i >= 60)
        return 1;
    __u8 kind = o->tcp[i & 63];
    if (kind == 0)
        return 1;
    if (kind == 1) {
        o->i = i + 1;
        return 0;
    }
    if (i + 1 >= o->len)
        return 1;
    __u8 olen = o->tcp[(i + 1) & 63];
    if (olen < 2 || i + olen > o->len)
        return 1;
    if (kind == 3 && olen == 3) {
        o->ws_ok = 1;
        o->ws = o->tcp[(i + 2) & 63];
    } else if (kind == 4 && olen == 2) {
        o->sack = 1;
    } else if (kind == 8 && olen == 10) {
        o->ts_ok = 1;
        o->tsval = ((__u32)o->tcp[(i + 2) & 63] << 24) | ((__u32)o->tcp[(i + 3) & 63] << 16) |
                   ((__u32)o->tcp[(i + 4) & 63] << 8) | o->tcp[(i + 5) & 63];
    }
    o->i = i + olen;
    return 0;
}

// A global (not inlined) function: the verifier checks it once, on its own,
// instead of once per path that reaches it.
// mss_ws: the MSS (low 16 bits) and window scale (next 8) to advertise (BPF
// functions take at most five arguments).
__attribute__((noinline)) int synproxy_syn(struct xdp_md *ctx, __u32 l3off, __u32 tcp_len, __u32 mss_ws, __u32 v6) {
    __u32 sp_mss = mss_ws & 0xffff, sp_wscale = (mss_ws >> 16) & 0xff;
    if (l3off > 22)
        return count(R_MALFORMED_IP, XDP_DROP);
    __u32 hl = v6 ? 40 : 20;
    __u8 ip[40] = {};
    struct opts o = {};
    __u8 *tcp = o.tcp;
    if (bpf_xdp_load_bytes(ctx, l3off, ip, v6 ? 40 : 20))
        return count(R_MALFORMED_IP, XDP_DROP);
    if (tcp_len < 20 || tcp_len > 60)
        return count(R_MALFORMED_L4, XDP_DROP);
    if (bpf_xdp_load_bytes(ctx, l3off + hl, tcp, tcp_len))
        return count(R_MALFORMED_L4, XDP_DROP);
    __s64 v = v6 ? bpf_tcp_raw_gen_syncookie_ipv6((struct ipv6hdr *)ip, (struct tcphdr *)tcp, tcp_len)
                 : bpf_tcp_raw_gen_syncookie_ipv4((struct iphdr *)ip, (struct tcphdr *)tcp, tcp_len);
    if (v < 0)
        return count(R_PASS, XDP_PASS); // let the kernel (its SYNPROXY or cookies) answer
    __u32 cookie = (__u32)v;
    // The client's options, one per bpf_loop step (verified once).
    o.i = 20;
    o.len = tcp_len;
    bpf_loop(40, opt_step, &o, 0);
    int ws_ok = o.ws_ok, sack = o.sack, ts_ok = o.ts_ok;
    __u8 ws = o.ws;
    __u32 tsval = o.tsval;
    __u32 new_tcp = 24 + (ts_ok ? 12 : 0) + (ts_ok && ws_ok ? 4 : 0);
    // The SYN-ACK, TCP part (built on the stack, then stored).
    __u8 out[40] = {};
    out[0] = tcp[2]; out[1] = tcp[3]; // source port <- the SYN's destination
    out[2] = tcp[0]; out[3] = tcp[1];
    out[4] = cookie >> 24; out[5] = cookie >> 16; out[6] = cookie >> 8; out[7] = cookie;
    __u32 ack = (((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7]) + 1;
    out[8] = ack >> 24; out[9] = ack >> 16; out[10] = ack >> 8; out[11] = ack;
    out[12] = (new_tcp / 4) << 4;
    out[13] = 0x12; // SYN+ACK
    out[14] = 0xfa; out[15] = 0xf0; // window 64240 (not scaled in a SYN-ACK)
    out[20] = 2; out[21] = 4; out[22] = sp_mss >> 8; out[23] = sp_mss & 0xff;
    if (ts_ok) {
        // As the kernel's cookie_init_timestamp: the low 6 bits carry the
        // client's window scale (15: none) and SACK.
        __u32 now_ms = bpf_ktime_get_ns() / 1000000;
        __u32 opts = ws_ok ? (ws & 0xf) : 0xf;
        if (sack)
            opts |= 1 << 4;
        __u32 ts = (now_ms & ~0x3fU) | opts;
        if (ts > now_ms)
            ts -= 64;
        out[24] = sack ? 4 : 1; out[25] = sack ? 2 : 1; // SACK-permitted or NOP NOP
        out[26] = 8; out[27] = 10;
        out[28] = ts >> 24; out[29] = ts >> 16; out[30] = ts >> 8; out[31] = ts;
        out[32] = tsval >> 24; out[33] = tsval >> 16; out[34] = tsval >> 8; out[35] = tsval;
        if (ws_ok) {
            out[36] = 1; out[37] = 3; out[38] = 3; out[39] = sp_wscale;
        }
    }
    // IP header, and the TCP checksum over the pseudo header and the segment.
    __u8 nip[40] = {};
    __u32 ps;
    if (v6) {
        nip[0] = 0x60;
        nip[4] = new_tcp >> 8; nip[5] = new_tcp & 0xff; // payload length
        nip[6] = IPPROTO_TCP;
        nip[7] = 64;
        __builtin_memcpy(&nip[8], &ip[24], 16);
        __builtin_memcpy(&nip[24], &ip[8], 16);
        ps = csum_words(&nip[8], 32) + IPPROTO_TCP + new_tcp;
    } else {
        nip[0] = 0x45;
        __u16 tot = 20 + new_tcp;
        nip[2] = tot >> 8; nip[3] = tot & 0xff;
        nip[6] = 0x40; // DF
        nip[8] = 64;
        nip[9] = IPPROTO_TCP;
        __builtin_memcpy(&nip[12], &ip[16], 4);
        __builtin_memcpy(&nip[16], &ip[12], 4);
        __u16 ic = csum_fold(csum_words(nip, 20));
        nip[10] = ic >> 8; nip[11] = ic & 0xff;
        ps = csum_words(&nip[12], 8) + IPPROTO_TCP + new_tcp;
    }
    __u16 tc = csum_fold(ps + csum_words(out, new_tcp));
    out[16] = tc >> 8; out[17] = tc & 0xff;
    // Resize the frame to the SYN-ACK, then write it.
    int delta = (int)(l3off + hl + new_tcp) - (int)bpf_xdp_get_buff_len(ctx);
    if (bpf_xdp_adjust_tail(ctx, delta))
        return count(R_PASS, XDP_PASS);
    __u8 mac[12];
    if (bpf_xdp_load_bytes(ctx, 0, mac, 12))
        return count(R_MALFORMED_L4, XDP_DROP);
    __u8 sw[12];
    __builtin_memcpy(sw, &mac[6], 6);
    __builtin_memcpy(&sw[6], mac, 6);
    if (bpf_xdp_store_bytes(ctx, 0, sw, 12) || bpf_xdp_store_bytes(ctx, l3off, nip, v6 ? 40 : 20))
        return count(R_MALFORMED_L4, XDP_DROP);
    if (new_tcp > 40 || bpf_xdp_store_bytes(ctx, l3off + hl, out, new_tcp))
        return count(R_MALFORMED_L4, XDP_DROP);
    return count(R_SP_SYNACK, XDP_TX);
}

// Proxied port, IPv4 (ip4) or IPv6 without extension headers (ip6).
static __always_inline int synproxy(struct xdp_md *ctx, struct config *cfg, struct iphdr *ip4, struct ipv6hdr *ip6, struct tcphdr *th, void *data) {
    __u8 f = ((__u8 *)th)[13];
    if (f & 0x04)
        return count(R_PASS, XDP_PASS); // RST: the kernel checks it
    __u32 l3off = ip4 ? (void *)ip4 - data : (void *)ip6 - data;
    if ((f & 0x12) == 0x02)
        return synproxy_syn(ctx, l3off, th->doff * 4, cfg->sp_mss | (__u32)cfg->sp_wscale << 16, ip6 != 0);
    struct bpf_sock_tuple t = {};
    __u32 tlen;
    if (ip4) {
        t.ipv4.saddr = ip4->saddr;
        t.ipv4.daddr = ip4->daddr;
        t.ipv4.sport = th->source;
        t.ipv4.dport = th->dest;
        tlen = sizeof(t.ipv4);
    } else {
        __builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
        __builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
        t.ipv6.sport = th->source;
        t.ipv6.dport = th->dest;
        tlen = sizeof(t.ipv6);
    }
    struct bpf_sock *sk = bpf_skc_lookup_tcp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0);
    if (sk) {
        int listener = sk->state == BPF_TCP_LISTEN;
        bpf_sk_release(sk);
        if (!listener)
            return count(R_PASS, XDP_PASS); // a connection (or its handshake) exists
    }
    if (f & 0x10) {
        long bad = ip4 ? bpf_tcp_raw_check_syncookie_ipv4(ip4, th) : bpf_tcp_raw_check_syncookie_ipv6(ip6, th);
        if (bad == 0)
            return count(R_SP_COOKIE, XDP_PASS);
    }
    return count(R_SP_BAD, XDP_DROP);
}

SEC("xdp")
int levee_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    struct config *cfg = bpf_map_lookup_elem(&CONFIG, &zero);
    if (!cfg)
        return XDP_PASS;
    __u64 now = 0;

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
    __u32 saddr4 = 0;
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
        struct lpm_v4 k = { .prefixlen = 32, .addr = ip->saddr };
        if (cfg->allow_entries && bpf_map_lookup_elem(&ALLOW_V4, &k))
            return count(R_ALLOWED, XDP_PASS);
        if (live(bpf_map_lookup_elem(&BLOCK_V4, &ip->saddr), &now))
            return count(R_BLOCKED_ADDR, XDP_DROP);
        for (int i = 0; i < LENS; i++) {
            if (i >= cfg->n_lens4)
                break;
            __u32 len = cfg->lens4[i] & 31;
            struct lpm_v4 nk = { .prefixlen = len, .addr = ip->saddr & bpf_htonl(len ? ~0U << (32 - len) : 0) };
            if (live(bpf_map_lookup_elem(&BLOCK_NET_V4, &nk), &now))
                return count(R_BLOCKED_NET, XDP_DROP);
        }
        if ((frag & 0x1fff) != 0)
            return count(R_PASS, XDP_PASS); // a later fragment has no L4 header
        l4 = ip->protocol;
        l4h = (void *)ip + hl;
        saddr4 = ip->saddr;
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
        if (cfg->allow_entries && bpf_map_lookup_elem(&ALLOW_V6, &k))
            return count(R_ALLOWED, XDP_PASS);
        if (live(bpf_map_lookup_elem(&BLOCK_V6, &src), &now))
            return count(R_BLOCKED_ADDR, XDP_DROP);
        for (int i = 0; i < LENS; i++) {
            if (i >= cfg->n_lens6)
                break;
            __u32 len = cfg->lens6[i] & 127;
            __u64 hi, lo;
            __builtin_memcpy(&hi, &src.addr[0], 8);
            __builtin_memcpy(&lo, &src.addr[8], 8);
            __u64 h = bpf_be64_to_cpu(hi), l = bpf_be64_to_cpu(lo);
            if (len <= 64) {
                h &= len ? ~0ULL << (64 - len) : 0;
                l = 0;
            } else {
                l &= ~0ULL << (128 - len);
            }
            struct lpm_v6 nk = { .prefixlen = len };
            hi = bpf_cpu_to_be64(h);
            lo = bpf_cpu_to_be64(l);
            __builtin_memcpy(&nk.addr[0], &hi, 8);
            __builtin_memcpy(&nk.addr[8], &lo, 8);
            if (live(bpf_map_lookup_elem(&BLOCK_NET_V6, &nk), &now))
                return count(R_BLOCKED_NET, XDP_DROP);
        }
    } else {
        return count(R_NON_IP, XDP_PASS);
    }

    int syn = 0;
    struct tcphdr *th = 0;
    if (l4 == IPPROTO_TCP) {
        struct tcphdr *t = l4h;
        th = t;
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
        if (port_in(&REFLECT_PORTS, sp) && !port_in(&SERVICE_PORTS, dp))
            return count(R_REFLECTION, XDP_DROP);
    }

    if (cfg->pkt_budget || cfg->syn_budget) {
        clock(&now);
        struct rate *r = v6 ? bpf_map_lookup_elem(&RATE, &src) : bpf_map_lookup_elem(&RATE_V4, &saddr4);
        if (!r) {
            struct rate fresh = { .start = now, .pkts = 1, .syns = syn };
            if (v6)
                bpf_map_update_elem(&RATE, &src, &fresh, BPF_ANY);
            else
                bpf_map_update_elem(&RATE_V4, &saddr4, &fresh, BPF_ANY);
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
    if (cfg->synproxy && th && port_in(&SYNPROXY_PORTS, bpf_ntohs(th->dest))) {
        if (!v6) {
            struct iphdr *ip = cur;
            if ((void *)(ip + 1) > end || (void *)(th + 1) > end)
                return count(R_MALFORMED_IP, XDP_DROP);
            if (ip->ihl != 5)
                return count(R_PASS, XDP_PASS); // IP options: the kernel's SYNPROXY decides
            return synproxy(ctx, cfg, ip, 0, th, data);
        }
        struct ipv6hdr *ip6 = cur;
        if ((void *)(ip6 + 1) > end || (void *)(th + 1) > end)
            return count(R_MALFORMED_IP, XDP_DROP);
        if (ip6->nexthdr != IPPROTO_TCP)
            return count(R_PASS, XDP_PASS); // extension headers: the kernel's SYNPROXY decides
        return synproxy(ctx, cfg, 0, ip6, th, data);
    }
    return count(R_PASS, XDP_PASS);
}
