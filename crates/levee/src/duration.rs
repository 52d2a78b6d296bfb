//! Durations on the command line, as users type them: `30s`, `2m`, `1h`,
//! `250ms`, or a bare number in the flag's own unit (seconds, or
//! milliseconds for flags named `…-ms`), so that old scripts keep working.

use std::str::FromStr;
use std::time::Duration;

fn parse(s: &str, bare: fn(u64) -> Duration, unit: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(bare)
            .map_err(|_| format!("{s:?} is too large"));
    }
    levee_config::Dur::from_str(t)
        .map(|d| d.as_duration())
        .map_err(|_| {
            format!("{s:?} is not a duration: write e.g. 30s, 2m, 1h, 250ms, or a bare number of {unit}")
        })
}

/// A duration whose bare number means seconds.
pub(crate) fn seconds(s: &str) -> Result<Duration, String> {
    parse(s, Duration::from_secs, "seconds")
}

/// A duration whose bare number means milliseconds.
pub(crate) fn millis(s: &str) -> Result<Duration, String> {
    parse(s, Duration::from_millis, "milliseconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        assert_eq!(seconds("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(seconds("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(seconds("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(seconds("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(seconds("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(seconds("7"), Ok(Duration::from_secs(7)));
        assert_eq!(millis("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(millis("2s"), Ok(Duration::from_secs(2)));
        let e = seconds("3 parsecs").unwrap_err();
        assert!(e.contains("write e.g. 30s"), "{e}");
        assert!(seconds("").is_err());
        assert!(seconds("99999999999999999999999").is_err());
    }
}
