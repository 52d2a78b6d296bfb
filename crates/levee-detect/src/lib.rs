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
//! Memory is fixed: the tick's sample keeps at most 64 values per feature
//! (space-saving), the baseline at most 512, rules at most `max_rules`.

pub mod detector;
pub mod features;

pub use detector::{Action, Baseline, Change, Detector, Evidence, Mode, Params, Rule, Tick};
pub use features::{Dim, Keys, Request};
