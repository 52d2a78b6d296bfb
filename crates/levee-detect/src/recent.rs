//! What the traffic has looked like lately, per dimension: each tick's
//! sampled counts folded into a table that decays (a value not seen again
//! fades by half in about two seconds at 100 ms ticks), at most `CAP`
//! values per dimension. For the dashboard's top-N tables; detection does
//! not read it.

use crate::features::Dim;
use std::collections::HashMap;

/// Values kept per dimension.
const CAP: usize = 64;
/// Weight kept per tick.
const DECAY: f64 = 0.966;

/// Decayed sampled counts per dimension, with labels.
#[derive(Debug)]
pub struct Recent {
    dims: Vec<HashMap<u64, (f64, String)>>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            dims: (0..Dim::COUNT).map(|_| HashMap::new()).collect(),
        }
    }
}

impl Recent {
    /// Fold one tick's counts of dimension `d` (key, count, label).
    pub(crate) fn fold<'a>(&mut self, d: Dim, tick: impl Iterator<Item = (u64, u64, &'a str)>) {
        let m = &mut self.dims[d.index()];
        for v in m.values_mut() {
            v.0 *= DECAY;
        }
        m.retain(|_, v| v.0 >= 0.05);
        for (key, count, label) in tick {
            if let Some(e) = m.get_mut(&key) {
                e.0 += count as f64;
                if e.1.is_empty() && !label.is_empty() {
                    e.1 = label.to_string();
                }
                continue;
            }
            if m.len() >= CAP {
                // Space-saving: the lightest value makes room, if lighter.
                let Some((&victim, &(w, _))) = m.iter().min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                else {
                    continue;
                };
                if w >= count as f64 {
                    continue;
                }
                m.remove(&victim);
            }
            m.insert(key, (count as f64, label.to_string()));
        }
    }

    /// The `n` heaviest labelled values of `d`, with their share of the
    /// dimension's recent weight.
    pub fn top(&self, d: Dim, n: usize) -> Vec<(String, f64)> {
        let m = &self.dims[d.index()];
        let total: f64 = m.values().map(|v| v.0).sum();
        let mut v: Vec<(String, f64)> = m
            .values()
            .filter(|(_, l)| !l.is_empty())
            .map(|(w, l)| (l.clone(), if total > 0.0 { w / total } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_values_rise_old_ones_fade_and_the_table_stays_bounded() {
        let mut r = Recent::default();
        for _ in 0..10 {
            r.fold(Dim::Path, [(1, 90, "/"), (2, 10, "/login")].into_iter());
        }
        let t = r.top(Dim::Path, 5);
        assert_eq!(t[0].0, "/");
        assert!((t[0].1 - 0.9).abs() < 0.01, "{t:?}");
        for _ in 0..200 {
            r.fold(Dim::Path, [(2, 10, "")].into_iter());
        }
        assert_eq!(r.top(Dim::Path, 1)[0].0, "/login");
        for i in 0..1000u64 {
            let l = format!("/p{i}");
            r.fold(Dim::Path, [(100 + i, 5, l.as_str())].into_iter());
        }
        assert!(r.dims[Dim::Path.index()].len() <= CAP);
    }
}
