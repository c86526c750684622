//! Kernel-log record prefixes: when a line was logged (`/dev/kmsg`, `dmesg`, `dmesg -T`,
//! RFC 3339, syslog), and the kernel's `\xHH` escapes of `/dev/kmsg` messages.

use std::time::{Duration, SystemTime};

/// When a record was logged.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Stamp {
    pub(super) uptime_us: Option<u64>,
    pub(super) wall: Option<SystemTime>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `hh:mm:ss` to seconds of the day.
fn clock(s: &str) -> Option<u32> {
    let mut it = s.split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it.next()?.split('.').next()?.parse().ok()?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// A UTC civil time.
fn civil(year: u32, month: usize, day: u32, secs: u32) -> Option<SystemTime> {
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let text = format!(
        "{year:04}-{:02}-{day:02}T{:02}:{:02}:{:02}Z",
        month + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    crate::time::parse_rfc3339(&text)
}

/// `Mon May  1 12:34:56 2024` (`dmesg -T`, `ctime`), as UTC.
fn parse_ctime(s: &str) -> Option<SystemTime> {
    let mut it = s.split_whitespace();
    let wd = it.next()?;
    if !WEEKDAYS.contains(&wd) {
        return None;
    }
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)?;
    let day: u32 = it.next()?.parse().ok()?;
    let secs = clock(it.next()?)?;
    let year: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    civil(year, month, day, secs)
}

/// `May  1 12:34:56 ` at the start of a syslog line: the time (as UTC, in the latest year that
/// does not put it more than a day after `now`) and the rest of the line.
fn split_syslog(line: &str, now: Option<SystemTime>) -> Option<(Option<SystemTime>, &str)> {
    let month = MONTHS.iter().position(|m| line.starts_with(m))?;
    let rest = line.get(3..)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let rest = rest.trim_start();
    let dlen = rest.bytes().take_while(u8::is_ascii_digit).count();
    if dlen == 0 || dlen > 2 {
        return None;
    }
    let day: u32 = rest[..dlen].parse().ok()?;
    let rest = rest[dlen..].strip_prefix(' ')?;
    let tlen = rest.find(' ').unwrap_or(rest.len());
    let secs = clock(&rest[..tlen])?;
    let tail = &rest[tlen..];
    let wall = now.and_then(|now| {
        let year = crate::time::format_rfc3339(now)
            .get(..4)?
            .parse::<u32>()
            .ok()?;
        let slack = Duration::from_secs(86_400);
        [year, year.saturating_sub(1)]
            .into_iter()
            .filter_map(|y| civil(y, month, day, secs))
            .find(|t| *t <= now + slack)
    });
    Some((wall, tail))
}

/// Decodes the kernel's `\xHH` escapes of `/dev/kmsg` (non-printable bytes and the backslash).
pub(super) fn decode_kmsg_escapes(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("\\x") {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(h) = s.get(i + 2..i + 4)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Splits a record prefix off a line.
pub(super) fn split_prefix(
    line: &str,
    boot_time: Option<SystemTime>,
    now: Option<SystemTime>,
) -> (Stamp, &str) {
    let wall_of = |us: u64| boot_time.map(|b| b + Duration::from_micros(us));
    // /dev/kmsg: "prio,seq,ts_usec,flags[,...];message"
    if line.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && let Some(semi) = line.get(..64.min(line.len())).and_then(|h| h.find(';'))
    {
        let mut fields = line[..semi].split(',');
        let prio = fields.next();
        let seq = fields.next();
        let ts = fields.next();
        if let (Some(p), Some(s), Some(t)) = (prio, seq, ts)
            && p.bytes().all(|b| b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_digit())
            && let Ok(us) = t.parse::<u64>()
        {
            return (
                Stamp {
                    uptime_us: Some(us),
                    wall: wall_of(us),
                },
                &line[semi + 1..],
            );
        }
    }
    // dmesg: "[ 12345.678901] message"
    if let Some(rest) = line.strip_prefix('[')
        && let Some(close) = rest.find(']')
    {
        let inner = rest[..close].trim();
        if let Some((s, frac)) = inner.split_once('.')
            && !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.len() <= 9
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            let secs: u64 = s.parse().unwrap_or(0);
            let micros: u64 =
                frac.parse::<u64>().unwrap_or(0) * 10u64.pow(9 - frac.len() as u32) / 1000;
            let us = secs * 1_000_000 + micros;
            return (
                Stamp {
                    uptime_us: Some(us),
                    wall: wall_of(us),
                },
                &rest[close + 1..],
            );
        }
        // dmesg -T: "[Mon May  1 12:34:56 2024] message"
        if let Some(wall) = parse_ctime(inner) {
            return (
                Stamp {
                    uptime_us: None,
                    wall: Some(wall),
                },
                &rest[close + 1..],
            );
        }
        return (Stamp::default(), &rest[close + 1..]);
    }
    // journalctl -o short-iso / syslog with an ISO timestamp first.
    if line.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && let Some(tok) = line.split_whitespace().next()
        && let Some(wall) = crate::time::parse_rfc3339(tok)
    {
        return (
            Stamp {
                uptime_us: None,
                wall: Some(wall),
            },
            &line[tok.len()..],
        );
    }
    // syslog / journalctl short: "May  1 12:34:56 host kernel: message"
    if let Some((wall, rest)) = split_syslog(line, now) {
        return (
            Stamp {
                uptime_us: None,
                wall,
            },
            rest,
        );
    }
    (Stamp::default(), line)
}
