//! In-line attack detection, as pure logic: the edge counts, samples and
//! asks; this crate decides. It learns a per-site baseline of normal traffic
//! (rate, errors, origin latency, new clients, and the share of every value
//! of every request feature), declares a mode with hysteresis (normal →
//! elevated → under attack and back), and during an anomaly derives the
//! over-represented feature values as ephemeral rules that expire when
//! traffic stops matching them.
//!
//! What it does not do: I/O, clocks, or enforcement. Time is a parameter;
//! the edge applies the rules and knobs (`levee-edge::defense`).
//!
//! An edge switched on in the middle of a flood has no baseline: then the
//! tick's own sample is split into suspect and clean parts (heavy hitters
//! against the median client, browsers whose traits contradict their
//! `User-Agent`: `cold`, `browser`), the clean part stands in for the
//! baseline, and it bootstraps the baseline while the attack lasts.
//!
//! Memory is fixed: the tick's sample keeps at most 64 values per feature
//! (space-saving) and at most 4,096 sampled requests, the baseline at most
//! 512 values per feature, rules at most `max_rules`.

pub mod browser;
pub mod cold;
pub mod detector;
pub mod features;
pub mod recent;

pub use cold::{ColdParams, Who};
pub use detector::{Action, Baseline, Change, Detector, Evidence, Mode, Params, Rule, Tick};
pub use features::{Dim, Keys, Request};
