//! The filter's allow and block lists: exact addresses in hash maps, prefixes
//! in LPM tries, each block with its expiry (monotonic ns, 0 = never; bit 63
//! marks entries mirrored from the edge, see `mirror`).
//!
//! Addresses are kept in their own family: IPv4 in the `_V4` maps, IPv6 in
//! the `_V6` maps.

use crate::{map_err, Filter, XdpError};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap, MapData};
use aya::Pod;
use std::net::IpAddr;

/// Set on a block's value when the edge's mirror owns the entry.
pub const OWNER_BIT: u64 = 1 << 63;

/// One list entry: an address or prefix.
pub type Net = (IpAddr, u8);

/// A block as stored: the prefix and its raw value (expiry ns | OWNER_BIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub net: Net,
    pub value: u64,
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

    /// Store a block's raw value (expiry and owner bit).
    pub(crate) fn set_block(&mut self, ip: IpAddr, len: u8, value: u64) -> Result<(), XdpError> {
        let len = len.min(full(ip));
        match (ip, len == full(ip)) {
            (IpAddr::V4(v4), true) => self
                .hash_mut::<[u8; 4], u64>("BLOCK_V4")?
                .insert(v4.octets(), value, 0)
                .map_err(map_err("BLOCK_V4")),
            (IpAddr::V6(_), true) => self
                .hash_mut::<[u8; 16], u64>("BLOCK_V6")?
                .insert(octets6(ip), value, 0)
                .map_err(map_err("BLOCK_V6")),
            (IpAddr::V4(v4), false) => {
                self.trie_mut::<[u8; 4], u64>("BLOCK_NET_V4")?
                    .insert(&Key::new(u32::from(len), v4.octets()), value, 0)
                    .map_err(map_err("BLOCK_NET_V4"))?;
                self.recount_nets()
            }
            (IpAddr::V6(v), false) => {
                self.trie_mut::<[u8; 16], u64>("BLOCK_NET_V6")?
                    .insert(&Key::new(u32::from(len), v.octets()), value, 0)
                    .map_err(map_err("BLOCK_NET_V6"))?;
                self.recount_nets()
            }
        }
    }

    /// Remove a block (address or prefix); `false` if it was not there.
    pub fn unblock(&mut self, ip: IpAddr, len: u8) -> Result<bool, XdpError> {
        let len = len.min(full(ip));
        let removed = match (ip, len == full(ip)) {
            (IpAddr::V4(v4), true) => self
                .hash_mut::<[u8; 4], u64>("BLOCK_V4")?
                .remove(&v4.octets())
                .is_ok(),
            (IpAddr::V6(_), true) => self
                .hash_mut::<[u8; 16], u64>("BLOCK_V6")?
                .remove(&octets6(ip))
                .is_ok(),
            (IpAddr::V4(v4), false) => self
                .trie_mut::<[u8; 4], u64>("BLOCK_NET_V4")?
                .remove(&Key::new(u32::from(len), v4.octets()))
                .is_ok(),
            (IpAddr::V6(v), false) => self
                .trie_mut::<[u8; 16], u64>("BLOCK_NET_V6")?
                .remove(&Key::new(u32::from(len), v.octets()))
                .is_ok(),
        };
        if len < full(ip) {
            self.recount_nets()?;
        }
        Ok(removed)
    }

    /// Never drop this address or prefix by a list (`mirrored`: owned by the edge).
    pub fn allow(&mut self, ip: IpAddr, len: u8) -> Result<(), XdpError> {
        self.set_allow(ip, len, 1)
    }

    pub(crate) fn set_allow(&mut self, ip: IpAddr, len: u8, value: u8) -> Result<(), XdpError> {
        let len = u32::from(len.min(full(ip)));
        match ip {
            IpAddr::V4(v4) => self
                .trie_mut::<[u8; 4], u8>("ALLOW_V4")?
                .insert(&Key::new(len, v4.octets()), value, 0)
                .map_err(map_err("ALLOW_V4")),
            IpAddr::V6(v) => self
                .trie_mut::<[u8; 16], u8>("ALLOW_V6")?
                .insert(&Key::new(len, v.octets()), value, 0)
                .map_err(map_err("ALLOW_V6")),
        }
    }

    /// Remove an allow entry; `false` if it was not there.
    pub fn disallow(&mut self, ip: IpAddr, len: u8) -> Result<bool, XdpError> {
        let len = u32::from(len.min(full(ip)));
        Ok(match ip {
            IpAddr::V4(v4) => self
                .trie_mut::<[u8; 4], u8>("ALLOW_V4")?
                .remove(&Key::new(len, v4.octets()))
                .is_ok(),
            IpAddr::V6(v) => self
                .trie_mut::<[u8; 16], u8>("ALLOW_V6")?
                .remove(&Key::new(len, v.octets()))
                .is_ok(),
        })
    }

    /// Every block (addresses and prefixes) as stored.
    pub fn blocks(&self) -> Result<Vec<Block>, XdpError> {
        let mut out = Vec::new();
        for (k, v) in self.hash::<[u8; 4], u64>("BLOCK_V4")?.iter().flatten() {
            out.push(Block {
                net: (IpAddr::from(k), 32),
                value: v,
            });
        }
        for (k, v) in self.hash::<[u8; 16], u64>("BLOCK_V6")?.iter().flatten() {
            out.push(Block {
                net: (IpAddr::from(k), 128),
                value: v,
            });
        }
        for (k, v) in self.trie::<[u8; 4], u64>("BLOCK_NET_V4")?.iter().flatten() {
            out.push(Block {
                net: (IpAddr::from(k.data()), k.prefix_len() as u8),
                value: v,
            });
        }
        for (k, v) in self.trie::<[u8; 16], u64>("BLOCK_NET_V6")?.iter().flatten() {
            out.push(Block {
                net: (IpAddr::from(k.data()), k.prefix_len() as u8),
                value: v,
            });
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
