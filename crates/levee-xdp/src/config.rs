//! The program's settings and counters as the controller sees them: why a
//! packet was dropped or passed (`Reason`, one per-CPU counter each), the
//! settings (`Config`) and their byte layout in the `CONFIG` map.

/// Why a packet was dropped or passed, as counted by the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    Pass = 0,
    MalformedEth,
    MalformedIp,
    MalformedL4,
    Fragment,
    Allowed,
    BlockedAddr,
    BlockedNet,
    TcpFlags,
    Reflection,
    RateSyn,
    RatePkt,
    NonIp,
    SynproxySynAck,
    SynproxyCookie,
    SynproxyBad,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::Pass,
        Reason::MalformedEth,
        Reason::MalformedIp,
        Reason::MalformedL4,
        Reason::Fragment,
        Reason::Allowed,
        Reason::BlockedAddr,
        Reason::BlockedNet,
        Reason::TcpFlags,
        Reason::Reflection,
        Reason::RateSyn,
        Reason::RatePkt,
        Reason::NonIp,
        Reason::SynproxySynAck,
        Reason::SynproxyCookie,
        Reason::SynproxyBad,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Pass => "pass",
            Reason::MalformedEth => "malformed_ethernet",
            Reason::MalformedIp => "malformed_ip",
            Reason::MalformedL4 => "malformed_l4",
            Reason::Fragment => "fragment",
            Reason::Allowed => "allow_list",
            Reason::BlockedAddr => "blocked_address",
            Reason::BlockedNet => "blocked_prefix",
            Reason::TcpFlags => "tcp_flags",
            Reason::Reflection => "udp_reflection",
            Reason::RateSyn => "rate_syn",
            Reason::RatePkt => "rate_packets",
            Reason::NonIp => "non_ip",
            Reason::SynproxySynAck => "synproxy_synack",
            Reason::SynproxyCookie => "synproxy_cookie_ok",
            Reason::SynproxyBad => "synproxy_bad_ack",
        }
    }
}

/// The program's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub drop_fragments: bool,
    pub syn_budget: u32,
    pub pkt_budget: u32,
    pub window_ms: u64,
    /// Answer SYNs to the SYN-proxy ports from XDP (see `set_synproxy_port`).
    pub synproxy: bool,
    /// MSS and window scale advertised in those SYN-ACKs (the server's).
    pub synproxy_mss: u16,
    pub synproxy_wscale: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            drop_fragments: true,
            syn_budget: 0,
            pkt_budget: 0,
            window_ms: 1000,
            synproxy: false,
            synproxy_mss: 1460,
            synproxy_wscale: 7,
        }
    }
}

/// UDP source ports of reflection/amplification services.
pub const REFLECTION_PORTS: [u16; 10] = [53, 123, 1900, 11211, 19, 389, 161, 137, 3702, 5353];

/// XDP verdicts.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// Distinct blocked prefix lengths the program probes, per family.
pub const MAX_PREFIX_LENGTHS: usize = 32;

/// The program's `struct config` as bytes (native endian, C layout:
/// drop_fragments u32, n_lens4 u32, syn_budget u32, pkt_budget u32,
/// window_ns u64, allow_entries u32, n_lens6 u32, lens4 [u8; 32],
/// lens6 [u8; 32], synproxy u32, sp_mss u16, sp_wscale u8, pad u8,
/// ifindex u32, pad u32).
/// Plain bytes: the workspace denies the unsafe code a
/// typed map value would need.
pub(crate) fn config_bytes(
    c: &Config,
    lens4: &[u8],
    lens6: &[u8],
    allows: u32,
    ifindex: u32,
) -> [u8; CONFIG_SIZE] {
    let mut b = [0u8; CONFIG_SIZE];
    b[0..4].copy_from_slice(&u32::from(c.drop_fragments).to_ne_bytes());
    b[4..8].copy_from_slice(&(lens4.len() as u32).to_ne_bytes());
    b[8..12].copy_from_slice(&c.syn_budget.to_ne_bytes());
    b[12..16].copy_from_slice(&c.pkt_budget.to_ne_bytes());
    b[16..24].copy_from_slice(&c.window_ms.saturating_mul(1_000_000).to_ne_bytes());
    b[24..28].copy_from_slice(&allows.to_ne_bytes());
    b[28..32].copy_from_slice(&(lens6.len() as u32).to_ne_bytes());
    for (i, l) in lens4.iter().take(MAX_PREFIX_LENGTHS).enumerate() {
        b[32 + i] = *l;
    }
    for (i, l) in lens6.iter().take(MAX_PREFIX_LENGTHS).enumerate() {
        b[64 + i] = *l;
    }
    b[96..100].copy_from_slice(&u32::from(c.synproxy).to_ne_bytes());
    b[100..102].copy_from_slice(&c.synproxy_mss.to_ne_bytes());
    b[102] = c.synproxy_wscale.min(14);
    b[104..108].copy_from_slice(&ifindex.to_ne_bytes());
    b
}

/// Size of the program's `struct config`.
pub(crate) const CONFIG_SIZE: usize = 112;
