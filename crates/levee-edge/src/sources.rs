//! What outside sources of decisions (a CrowdSec Local API, through the
//! binary's bouncer) have set: the clients to challenge, and each source's
//! health for `/status` and `/metrics`. `bouncing` applies their decisions.

use crate::clock;
use levee_limits::NetSet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::PoisonError;

/// What the sources have set: the clients to challenge, and each source's
/// health.
#[derive(Debug)]
pub(crate) struct Sources {
    pub(crate) captcha: std::sync::RwLock<NetSet>,
    pub(crate) health: std::sync::Mutex<BTreeMap<String, (serde_json::Value, String)>>,
}

impl Sources {
    pub(crate) fn new(cap: usize) -> Sources {
        Sources {
            captcha: std::sync::RwLock::new(NetSet::new(cap)),
            health: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a source asked that `ip` be challenged.
    pub(crate) fn challenge(&self, ip: IpAddr) -> bool {
        let set = self.captcha.read().unwrap_or_else(PoisonError::into_inner);
        !set.is_empty() && set.contains(ip, clock::now_ms())
    }

    pub(crate) fn status(&self) -> serde_json::Value {
        let h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::Value::Object(h.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
    }

    pub(crate) fn metrics(&self) -> String {
        let h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        h.values().map(|v| v.1.as_str()).collect()
    }
}
