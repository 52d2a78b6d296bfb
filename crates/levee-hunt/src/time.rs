//! Times: Unix milliseconds as text, and the times users type (`--from`,
//! `--to`, JSON logs' ISO 8601 timestamps).

/// Unix ms as `2015-05-17T10:05:03Z`.
pub fn fmt_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// Parse `2015-05-17`, `2015-05-17T10:05`, `2015-05-17T10:05:03Z` or with
/// an offset (`+02:00`) into Unix ms; a time without an offset is UTC.
/// Dates are validated (`2015-02-31` is refused), by `jiff`.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return Some(dt.to_zoned(utc).ok()?.timestamp().as_millisecond());
    }
    let d: jiff::civil::Date = s.parse().ok()?;
    Some(d.to_zoned(utc).ok()?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2015-05-17"), Some(1_431_820_800_000));
        assert_eq!(parse_time("2015-05-17T10:05:03Z"), Some(1_431_857_103_000));
        assert_eq!(
            parse_time("2015-05-17T12:05:03+02:00"),
            Some(1_431_857_103_000)
        );
        assert_eq!(parse_time("2015-13-01"), None);
        assert_eq!(parse_time("2015-02-31"), None);
        assert_eq!(parse_time("2015-05-17T10:05"), Some(1_431_857_100_000));
        assert_eq!(parse_time("2015-05-17 10:05:03"), Some(1_431_857_103_000));
        assert_eq!(fmt_ms(1_431_857_103_999), "2015-05-17T10:05:03Z");
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(fmt_ms(1_431_857_103_000), "2015-05-17T10:05:03Z");
    }
}
