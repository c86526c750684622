//! Small, dependency-free time helpers: RFC 3339 formatting and parsing (UTC and offsets) and
//! relative windows such as `30m` or `1h30m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats a time as RFC 3339 in UTC with second precision, e.g. `2026-01-31T12:00:00Z`.
pub fn format_rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an RFC 3339 timestamp (`2026-01-31T12:00:00Z`, `...T12:00:00.123+02:00`; a space
/// instead of `T` and a `+0200` offset are accepted too).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let mut dp = date.split('-');
    let y = num(dp.next()?)?;
    let mo = num(dp.next()?)?;
    let d = num(dp.next()?)?;
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let h = num(rest.get(0..2)?)?;
    let mi = num(rest.get(3..5)?)?;
    let se = num(rest.get(6..8)?)?;
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut tail = rest.get(8..)?;
    let mut nanos = 0u32;
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n.min(9)];
        nanos = num(digits)? * 10u32.pow(9 - digits.len() as u32);
        tail = &frac[n..];
    }
    let offset_s: i64 = match tail {
        "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = &tail[1..];
            let (oh, om) = match body.len() {
                5 if &body[2..3] == ":" => (num(&body[0..2])?, num(&body[3..5])?),
                4 => (num(&body[0..2])?, num(&body[2..4])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + se) - offset_s;
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// Parses a relative window such as `45s`, `30m`, `1h`, `2d`, `1w` or `1h30m` (at most 400 days).
pub fn parse_window(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || !s.is_ascii() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if digits.len() >= 9 {
                return None;
            }
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() || total == 0 || total > 400 * 86_400 {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// Parses `since`: either a relative window (`30m`, `1h`, `7d`) counted back from `now`, or an
/// RFC 3339 timestamp.
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime> {
    let parsed = match parse_window(s) {
        Some(w) => now.checked_sub(w),
        None => parse_rfc3339(s),
    };
    parsed.ok_or_else(|| Error::InvalidSince {
        value: s.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_769_860_800); // 2026-01-31T12:00:00Z
        assert_eq!(format_rfc3339(t), "2026-01-31T12:00:00Z");
        assert_eq!(parse_rfc3339("2026-01-31T12:00:00Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-31T14:00:00+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-31 11:00:00-0100"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-01-31T12:00:00.5Z"),
            Some(t + Duration::from_millis(500))
        );
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+2",
            "2026-01-01T00:00:00.Z",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn parses_windows() {
        assert_eq!(parse_window("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_window("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_window("2d"), Some(Duration::from_secs(172_800)));
        for s in ["", "h", "5", "1x", "0m", "-1h", "99999999999h", "1000d"] {
            assert_eq!(parse_window(s), None, "{s}");
        }
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            parse_since("1h", now).ok(),
            Some(UNIX_EPOCH + Duration::from_secs(6400))
        );
        assert_eq!(parse_since("soon", now).ok(), None);
    }
}
