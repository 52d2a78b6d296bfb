//! The filter's allow and block lists: exact addresses in hash maps, prefixes
//! in LPM tries, each block with its expiry (monotonic ns, 0 = never; bit 63
//! marks entries mirrored from the edge, see `mirror`).
//!
//! Addresses are kept in their own family: IPv4 in the `_V4` maps, IPv6 in
//! the `_V6` maps.

use crate::{map_err, Filter, XdpError, MAX_PREFIX_LENGTHS};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap, MapData};
use aya::Pod;
use std::net::IpAddr;

/// Set on a block's value when the edge's mirror owns the entry.
pub const OWNER_BIT: u64 = 1 << 63;

/// One list entry: an address or prefix.
pub type Net = (IpAddr, u8);

/// A block as stored: the prefix, its raw value (expiry ns | OWNER_BIT) and
/// the packets it dropped (an estimate: counted without atomics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub net: Net,
    pub value: u64,
    pub hits: u64,
}

fn block(net: Net, v: [u8; 16]) -> Block {
    let u = |i: usize| {
        u64::from_ne_bytes([
            v[i],
            v[i + 1],
            v[i + 2],
            v[i + 3],
            v[i + 4],
            v[i + 5],
            v[i + 6],
            v[i + 7],
        ])
    };
    Block {
        net,
        value: u(0),
        hits: u(8),
    }
}

impl Block {
    /// Expiry in monotonic ns (0: never).
    pub fn expires_ns(&self) -> u64 {
        self.value & !OWNER_BIT
    }
    /// Put there by the edge's mirror (not by `levee xdp block`).
    pub fn mirrored(&self) -> bool {
        self.value & OWNER_BIT != 0
    }
}

fn full(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn octets6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Record a prefix length in use; true if it is new.
pub(crate) fn push_len(lens: &mut Vec<u8>, len: u8) -> bool {
    if lens.contains(&len) || lens.len() >= MAX_PREFIX_LENGTHS {
        return false;
    }
    lens.push(len);
    // Longest first: the most specific block decides first.
    lens.sort_unstable_by(|a, b| b.cmp(a));
    true
}

fn too_many_lengths(map: &'static str) -> XdpError {
    XdpError::Map(
        map,
        format!("more than {MAX_PREFIX_LENGTHS} distinct prefix lengths are blocked; block fewer lengths (e.g. widen to /24 or /16)"),
    )
}

fn key_len(k: &[u8]) -> u8 {
    u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) as u8
}

/// Key of an IPv4 prefix: length (native endian u32) and the masked address.
fn key4(ip: IpAddr, len: u8) -> [u8; 8] {
    let a = match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => 0,
    };
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    let mut k = [0u8; 8];
    k[0..4].copy_from_slice(&u32::from(len).to_ne_bytes());
    k[4..8].copy_from_slice(&(a & mask).to_be_bytes());
    k
}

/// Key of an IPv6 prefix: length (native endian u32) and the masked address.
fn key6(ip: IpAddr, len: u8) -> [u8; 20] {
    let a = u128::from_be_bytes(octets6(ip));
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    let mut k = [0u8; 20];
    k[0..4].copy_from_slice(&u32::from(len).to_ne_bytes());
    k[4..20].copy_from_slice(&(a & mask).to_be_bytes());
    k
}

impl Filter {
    pub(crate) fn hash_mut<K: Pod, V: Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, V>, XdpError> {
        let m = self
            .ebpf
            .map_mut(name)
            .ok_or(XdpError::Map(name, "missing".into()))?;
        HashMap::try_from(m).map_err(map_err(name))
    }

    pub(crate) fn hash<K: Pod, V: Pod>(
        &self,
        name: &'static str,
    ) -> Result<HashMap<&MapData, K, V>, XdpError> {
        let m = self
            .ebpf
            .map(name)
            .ok_or(XdpError::Map(name, "missing".into()))?;
        HashMap::try_from(m).map_err(map_err(name))
    }

    pub(crate) fn trie_mut<K: Pod, V: Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<LpmTrie<&mut MapData, K, V>, XdpError> {
        let m = self
            .ebpf
            .map_mut(name)
            .ok_or(XdpError::Map(name, "missing".into()))?;
        LpmTrie::try_from(m).map_err(map_err(name))
    }

    pub(crate) fn trie<K: Pod, V: Pod>(
        &self,
        name: &'static str,
    ) -> Result<LpmTrie<&MapData, K, V>, XdpError> {
        let m = self
            .ebpf
            .map(name)
            .ok_or(XdpError::Map(name, "missing".into()))?;
        LpmTrie::try_from(m).map_err(map_err(name))
    }

    /// Block an address or prefix until `expires_ns` (monotonic, as
    /// `CLOCK_MONOTONIC`/`bpf_ktime_get_ns`), or for ever (0).
    pub fn block(&mut self, ip: IpAddr, len: u8, expires_ns: u64) -> Result<(), XdpError> {
        self.set_block(ip, len, expires_ns & !OWNER_BIT)
    }

    /// Store a block's raw value (expiry and owner bit), keeping its hits.
    pub(crate) fn set_block(&mut self, ip: IpAddr, len: u8, value: u64) -> Result<(), XdpError> {
        let len = len.min(full(ip));
        match (ip, len == full(ip)) {
            (IpAddr::V4(v4), true) => self.put("BLOCK_V4", v4.octets(), value),
            (IpAddr::V6(_), true) => self.put("BLOCK_V6", octets6(ip), value),
            (IpAddr::V4(_), false) => {
                if !self.lens4.contains(&len) && self.lens4.len() >= MAX_PREFIX_LENGTHS {
                    return Err(too_many_lengths("BLOCK_NET_V4"));
                }
                self.put("BLOCK_NET_V4", key4(ip, len), value)?;
                if push_len(&mut self.lens4, len) {
                    self.write_config()?;
                }
                Ok(())
            }
            (IpAddr::V6(_), false) => {
                if !self.lens6.contains(&len) && self.lens6.len() >= MAX_PREFIX_LENGTHS {
                    return Err(too_many_lengths("BLOCK_NET_V6"));
                }
                self.put("BLOCK_NET_V6", key6(ip, len), value)?;
                if push_len(&mut self.lens6, len) {
                    self.write_config()?;
                }
                Ok(())
            }
        }
    }

    /// Insert or update one block entry; the hit count survives an update.
    fn put<const N: usize>(
        &mut self,
        map: &'static str,
        key: [u8; N],
        value: u64,
    ) -> Result<(), XdpError>
    where
        [u8; N]: Pod,
    {
        let mut m = self.hash_mut::<[u8; N], [u8; 16]>(map)?;
        let mut v = m.get(&key, 0).unwrap_or([0u8; 16]);
        v[..8].copy_from_slice(&value.to_ne_bytes());
        m.insert(key, v, 0).map_err(map_err(map))
    }

    /// Remove a block (address or prefix); `false` if it was not there.
    pub fn unblock(&mut self, ip: IpAddr, len: u8) -> Result<bool, XdpError> {
        let len = len.min(full(ip));
        let removed = match (ip, len == full(ip)) {
            (IpAddr::V4(v4), true) => self
                .hash_mut::<[u8; 4], [u8; 16]>("BLOCK_V4")?
                .remove(&v4.octets())
                .is_ok(),
            (IpAddr::V6(_), true) => self
                .hash_mut::<[u8; 16], [u8; 16]>("BLOCK_V6")?
                .remove(&octets6(ip))
                .is_ok(),
            // A length left without prefixes costs one missed probe until the
            // next `open_pinned` recounts.
            (IpAddr::V4(_), false) => self
                .hash_mut::<[u8; 8], [u8; 16]>("BLOCK_NET_V4")?
                .remove(&key4(ip, len))
                .is_ok(),
            (IpAddr::V6(_), false) => self
                .hash_mut::<[u8; 20], [u8; 16]>("BLOCK_NET_V6")?
                .remove(&key6(ip, len))
                .is_ok(),
        };
        Ok(removed)
    }

    /// Never drop this address or prefix by a list (`mirrored`: owned by the edge).
    pub fn allow(&mut self, ip: IpAddr, len: u8) -> Result<(), XdpError> {
        self.set_allow(ip, len, 1)
    }

    pub(crate) fn set_allow(&mut self, ip: IpAddr, len: u8, value: u8) -> Result<(), XdpError> {
        let len = u32::from(len.min(full(ip)));
        let new = match ip {
            IpAddr::V4(v4) => {
                let mut m = self.trie_mut::<[u8; 4], u8>("ALLOW_V4")?;
                let k = Key::new(len, v4.octets());
                let new = m.get(&k, 0).is_err();
                m.insert(&k, value, 0).map_err(map_err("ALLOW_V4"))?;
                new
            }
            IpAddr::V6(v) => {
                let mut m = self.trie_mut::<[u8; 16], u8>("ALLOW_V6")?;
                let k = Key::new(len, v.octets());
                let new = m.get(&k, 0).is_err();
                m.insert(&k, value, 0).map_err(map_err("ALLOW_V6"))?;
                new
            }
        };
        if new {
            self.allows += 1;
            self.write_config()?;
        }
        Ok(())
    }

    /// Remove an allow entry; `false` if it was not there.
    pub fn disallow(&mut self, ip: IpAddr, len: u8) -> Result<bool, XdpError> {
        let len = u32::from(len.min(full(ip)));
        let removed = match ip {
            IpAddr::V4(v4) => self
                .trie_mut::<[u8; 4], u8>("ALLOW_V4")?
                .remove(&Key::new(len, v4.octets()))
                .is_ok(),
            IpAddr::V6(v) => self
                .trie_mut::<[u8; 16], u8>("ALLOW_V6")?
                .remove(&Key::new(len, v.octets()))
                .is_ok(),
        };
        if removed {
            self.allows = self.allows.saturating_sub(1);
            self.write_config()?;
        }
        Ok(removed)
    }

    /// Every block (addresses and prefixes) as stored.
    pub fn blocks(&self) -> Result<Vec<Block>, XdpError> {
        let mut out = Vec::new();
        for (k, v) in self.hash::<[u8; 4], [u8; 16]>("BLOCK_V4")?.iter().flatten() {
            out.push(block((IpAddr::from(k), 32), v));
        }
        for (k, v) in self
            .hash::<[u8; 16], [u8; 16]>("BLOCK_V6")?
            .iter()
            .flatten()
        {
            out.push(block((IpAddr::from(k), 128), v));
        }
        for (k, v) in self
            .hash::<[u8; 8], [u8; 16]>("BLOCK_NET_V4")?
            .iter()
            .flatten()
        {
            let a: [u8; 4] = [k[4], k[5], k[6], k[7]];
            out.push(block((IpAddr::from(a), key_len(&k)), v));
        }
        for (k, v) in self
            .hash::<[u8; 20], [u8; 16]>("BLOCK_NET_V6")?
            .iter()
            .flatten()
        {
            let mut a = [0u8; 16];
            a.copy_from_slice(&k[4..20]);
            out.push(block((IpAddr::from(a), key_len(&k)), v));
        }
        Ok(out)
    }

    /// Every allow entry with its value (2: mirrored from the edge).
    pub fn allowed(&self) -> Result<Vec<(Net, u8)>, XdpError> {
        let mut out = Vec::new();
        for (k, v) in self.trie::<[u8; 4], u8>("ALLOW_V4")?.iter().flatten() {
            out.push(((IpAddr::from(k.data()), k.prefix_len() as u8), v));
        }
        for (k, v) in self.trie::<[u8; 16], u8>("ALLOW_V6")?.iter().flatten() {
            out.push(((IpAddr::from(k.data()), k.prefix_len() as u8), v));
        }
        Ok(out)
    }

    /// Remove blocks whose expiry has passed; how many.
    pub fn sweep(&mut self, now_ns: u64) -> Result<usize, XdpError> {
        let dead: Vec<Net> = self
            .blocks()?
            .into_iter()
            .filter(|b| b.expires_ns() != 0 && b.expires_ns() <= now_ns)
            .map(|b| b.net)
            .collect();
        for (ip, len) in &dead {
            self.unblock(*ip, *len)?;
        }
        Ok(dead.len())
    }
}
