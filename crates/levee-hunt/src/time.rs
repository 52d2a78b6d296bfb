//! Times: Unix milliseconds as text, and the times users type (`--from`,
//! `--to`, JSON logs' ISO 8601 timestamps).

use crate::logs;

/// Unix ms as `2015-05-17T10:05:03Z`.
pub fn fmt_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parse `2015-05-17`, `2015-05-17T10:05`, `2015-05-17T10:05:03Z` or with
/// an offset (`+02:00`) into Unix ms.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at(s.len().min(10));
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = logs::days_from_civil(y, m, day) * 86_400;
    let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
    if rest.is_empty() {
        return Some(secs * 1000);
    }
    let (clock, tz) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut c = clock.split(':');
    let hh: i64 = c.next()?.parse().ok()?;
    let mm: i64 = c.next().unwrap_or("0").parse().ok()?;
    let ss: i64 = c.next().unwrap_or("0").parse().ok()?;
    secs += hh * 3600 + mm * 60 + ss;
    if let Some(off) = tz.strip_prefix(['+', '-']) {
        let sign = if tz.starts_with('-') { -1 } else { 1 };
        let (h, m) = off.split_once(':').unwrap_or((off, "0"));
        let o = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        secs -= sign * o;
    }
    Some(secs * 1000)
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
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(fmt_ms(1_431_857_103_000), "2015-05-17T10:05:03Z");
    }
}
