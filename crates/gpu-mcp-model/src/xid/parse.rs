//! Parser for the NVIDIA driver's kernel-log lines (`NVRM: Xid (PCI:0000:3b:00): 79, ...`).
//!
//! Accepted record prefixes: `/dev/kmsg` records (`6,1234,5678901,-;message`, monotonic µs,
//! with the kernel's `\xHH` escapes decoded, so an escaped newline splits the message into its
//! lines), `dmesg` (`[12345.678901] message`), `dmesg -T` (`[Mon May  1 12:34:56 2024]`),
//! ISO 8601 / RFC 3339 (`journalctl -o short-iso`, rsyslog), classic syslog / `journalctl`
//! short (`May  1 12:34:56 host kernel: ...`, the year taken from "now" when the parser is
//! given one), or none. Times without a zone (`dmesg -T`, syslog) are read as UTC. A line
//! whose time cannot be told has none: it is never counted as recent.
//! Accepted Xid forms: with and without `PCI:`, with MIG `GPU-I:`/`GPU-CI:` attribution, with
//! `GPU-<uuid>` instead of a PCI address, with or without `pid=`/`name=` (including
//! `pid='<unknown>'`). The driver's "fallen off the bus" lines that come without an Xid line
//! produce an implied Xid 79. NVSwitch `SXid` lines (`nvidia-nvswitch0: SXid (PCI:...): 12028,
//! Non-fatal, Link 46 ...`) are kept apart as [`SxidEvent`]s. Junk, overlong lines and
//! truncated records are skipped, never fatal.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use super::stamp::{Stamp, decode_kmsg_escapes, split_prefix};
use super::{XidEvent, XidSource};

/// Longest part of a line that is examined; Xid lines are far shorter.
const MAX_EXAMINED: usize = 16 * 1024;
/// Longest message kept per event.
const MAX_MESSAGE: usize = 1024;
/// Events kept per parse (the newest win).
pub const DEFAULT_MAX_EVENTS: usize = 50_000;

/// Normalises a PCI address to the one form every answer uses: Linux's lowercase
/// `dddd:bb:dd.f` (as `lspci -D` and `/sys/bus/pci/devices` name the device).
///
/// Accepts NVML's `00000000:3B:00.0`, `PCI:0000:3b:00`, `3b:00.0`, and the kernel log's
/// `0000:3b:00`, which the NVIDIA driver prints without the function: a GPU is function 0.
pub fn normalize_pci_bus_id(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix("PCI:").unwrap_or(s);
    let (s, func) = match s.rsplit_once('.') {
        Some((head, func)) if func.len() == 1 && func.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (head, func)
        }
        Some(_) => return None,
        None => (s, "0"),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, dev) = match parts.as_slice() {
        [d, b, v] => (*d, *b, *v),
        [b, v] => ("0", *b, *v),
        _ => return None,
    };
    let hex = |x: &str, max: usize| -> Option<u32> {
        if x.is_empty() || x.len() > max || !x.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(x, 16).ok()
    };
    let domain = hex(domain, 8)?;
    let bus = hex(bus, 2)?;
    let dev = hex(dev, 2)?;
    let func = hex(func, 1).filter(|f| *f < 8)?;
    let dev = (dev < 32).then_some(dev)?;
    Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}"))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The fields of one `NVRM: Xid (...)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidLine {
    /// The Xid code.
    pub xid: u32,
    /// Normalised PCI address, when the line names one.
    pub pci_bus_id: Option<String>,
    /// GPU UUID, when the line names the GPU by UUID.
    pub gpu_uuid: Option<String>,
    /// MIG GPU instance.
    pub gpu_instance: Option<u32>,
    /// MIG compute instance.
    pub compute_instance: Option<u32>,
    /// Process id, when known.
    pub pid: Option<u32>,
    /// Process name, when known.
    pub process_name: Option<String>,
    /// The driver's free-text message.
    pub message: String,
}

/// Parses the text after `NVRM: Xid (` up to the end of the line.
fn parse_xid_body(body: &str) -> Option<XidLine> {
    let close = body.find(')')?;
    let inner = &body[..close];
    let mut pci_bus_id = None;
    let mut gpu_uuid = None;
    let mut gpu_instance = None;
    let mut compute_instance = None;
    for tok in inner.split_whitespace() {
        if let Some(v) = tok.strip_prefix("GPU-I:") {
            gpu_instance = v.parse().ok();
        } else if let Some(v) = tok.strip_prefix("GPU-CI:") {
            compute_instance = v.parse().ok();
        } else if tok.starts_with("GPU-") && tok.len() > 8 {
            gpu_uuid = Some(tok.trim_end_matches(',').to_owned());
        } else if pci_bus_id.is_none() {
            pci_bus_id = normalize_pci_bus_id(tok.trim_end_matches(','));
        }
    }
    if pci_bus_id.is_none() && gpu_uuid.is_none() {
        return None;
    }
    let after = body[close + 1..].strip_prefix(':')?.trim_start();
    let ndigits = after.bytes().take_while(u8::is_ascii_digit).count();
    if ndigits == 0 || ndigits > 6 {
        return None;
    }
    let xid: u32 = after[..ndigits].parse().ok()?;
    let mut rest = after[ndigits..].trim_start();
    match rest.as_bytes().first() {
        None => {}
        Some(b',') => rest = rest[1..].trim_start(),
        Some(_) => return None,
    }
    let mut pid = None;
    let mut process_name = None;
    if let Some(p) = rest.strip_prefix("pid=") {
        let end = p.find(',').unwrap_or(p.len());
        pid = p[..end].trim().parse().ok();
        rest = p.get(end + 1..).unwrap_or("").trim_start();
        if let Some(n) = rest.strip_prefix("name=") {
            let end = n.find(", ").or_else(|| n.find(',')).unwrap_or(n.len());
            let name = n[..end].trim();
            if !name.is_empty() && name != "<unknown>" {
                process_name = Some(truncate(name, 256));
            }
            rest = n.get(end + 1..).unwrap_or("").trim_start();
        }
    }
    Some(XidLine {
        xid,
        pci_bus_id,
        gpu_uuid,
        gpu_instance,
        compute_instance,
        pid,
        process_name,
        message: truncate(rest.trim_end(), MAX_MESSAGE),
    })
}

/// Parses one message (without a record prefix) that contains `NVRM: Xid (...)`.
pub fn parse_xid_line(line: &str) -> Option<XidLine> {
    let at = line.find("NVRM: Xid (")?;
    parse_xid_body(&line[at + "NVRM: Xid (".len()..])
}

/// The result of parsing a kernel log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelLogParse {
    /// Xid events, oldest first (at most the newest `max_events`).
    pub events: Vec<XidEvent>,
    /// GPU UUIDs the driver printed per PCI address (`NVRM: GPU at PCI:...: GPU-...`).
    pub gpu_uuids: BTreeMap<String, String>,
    /// Lines (records) examined.
    pub lines: u64,
    /// Lines that mention `NVRM: Xid` but could not be parsed (truncated or garbled).
    pub unparsed_xid_lines: u64,
    /// Events dropped because more than `max_events` were found.
    pub dropped_events: u64,
    /// NVSwitch `SXid` errors, oldest first (at most the newest `max_events`).
    pub sxids: Vec<SxidEvent>,
}

/// One NVSwitch error (`nvidia-nvswitchN: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 46 ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct SxidEvent {
    /// The SXid code.
    pub sxid: u32,
    /// The NVSwitch's normalised PCI address.
    pub pci_bus_id: Option<String>,
    /// The switch device name, e.g. `nvidia-nvswitch3`.
    pub switch: Option<String>,
    /// The NVSwitch instance, the number in its device name (`3` for `nvidia-nvswitch3`).
    pub instance: Option<u32>,
    /// `Fatal` (`true`) or `Non-fatal` (`false`), when the line says.
    pub fatal: Option<bool>,
    /// The NVSwitch port (link) the error is on, when the line names one.
    pub link: Option<u32>,
    /// The rest of the driver's message.
    pub message: String,
    /// Wall-clock time, when known.
    pub time: Option<SystemTime>,
    /// Time since boot in microseconds (kernel-log records).
    pub uptime_us: Option<u64>,
}

/// Parses one line that contains `SXid (`.
pub fn parse_sxid_line(msg: &str) -> Option<SxidEvent> {
    let at = msg.find("SXid (")?;
    let switch = msg[..at]
        .trim_end()
        .trim_end_matches(':')
        .rsplit(' ')
        .next()
        .filter(|w| w.starts_with("nvidia-nvswitch"))
        .map(str::to_owned);
    let instance = switch
        .as_deref()
        .and_then(|s| s.strip_prefix("nvidia-nvswitch"))
        .filter(|n| (1..=4).contains(&n.len()))
        .and_then(|n| n.parse().ok());
    let body = &msg[at + "SXid (".len()..];
    let close = body.find(')')?;
    let pci_bus_id = normalize_pci_bus_id(&body[..close]);
    let after = body[close + 1..].strip_prefix(':')?.trim_start();
    let ndigits = after.bytes().take_while(u8::is_ascii_digit).count();
    if ndigits == 0 || ndigits > 6 {
        return None;
    }
    let sxid: u32 = after[..ndigits].parse().ok()?;
    let mut rest = after[ndigits..]
        .trim_start()
        .trim_start_matches(',')
        .trim_start();
    let mut fatal = None;
    for (word, f) in [("Non-fatal", false), ("Fatal", true)] {
        if rest
            .get(..word.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(word))
        {
            fatal = Some(f);
            rest = rest[word.len()..]
                .trim_start()
                .trim_start_matches(',')
                .trim_start();
            break;
        }
    }
    let link = rest
        .strip_prefix("Link ")
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    Some(SxidEvent {
        sxid,
        pci_bus_id,
        switch,
        instance,
        fatal,
        link,
        message: truncate(rest.trim_end(), MAX_MESSAGE),
        time: None,
        uptime_us: None,
    })
}

/// An incremental kernel-log parser: feed it lines (or `/dev/kmsg` records), then `finish`.
#[derive(Debug)]
pub struct KernelLogParser {
    boot_time: Option<SystemTime>,
    now: Option<SystemTime>,
    sxids: VecDeque<SxidEvent>,
    max_events: usize,
    events: VecDeque<XidEvent>,
    out: KernelLogParse,
    /// A "The NVIDIA GPU <bdf>" line waiting for its "fallen off the bus" continuation.
    pending_off_bus: Option<(String, Stamp, u8)>,
}

impl KernelLogParser {
    /// A parser; `boot_time` turns monotonic record times into wall-clock times.
    pub fn new(boot_time: Option<SystemTime>) -> Self {
        Self {
            boot_time,
            now: None,
            sxids: VecDeque::new(),
            max_events: DEFAULT_MAX_EVENTS,
            events: VecDeque::new(),
            out: KernelLogParse::default(),
            pending_off_bus: None,
        }
    }

    /// The time of reading: syslog lines, which carry no year, get the latest year that does not
    /// put them in the future. Without it they have no time.
    pub fn with_now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Keeps at most `max` events (the newest).
    pub fn with_max_events(mut self, max: usize) -> Self {
        self.max_events = max.max(1);
        self
    }

    fn push(&mut self, ev: XidEvent) {
        if self.events.len() >= self.max_events {
            self.events.pop_front();
            self.out.dropped_events += 1;
        }
        self.events.push_back(ev);
    }

    fn implied_79(&mut self, pci: String, stamp: Stamp, message: &str) {
        // The driver usually prints the Xid 79 line next to these; count the GPU once.
        let dup = self.events.iter().rev().take(8).any(|e| {
            e.xid == 79
                && e.pci_bus_id.as_deref() == Some(pci.as_str())
                && match (e.uptime_us, stamp.uptime_us) {
                    (Some(a), Some(b)) => a.abs_diff(b) < 10_000_000,
                    _ => true,
                }
        });
        if dup {
            return;
        }
        self.push(XidEvent {
            xid: 79,
            source: XidSource::KernelLog,
            pci_bus_id: Some(pci),
            gpu_uuid: None,
            gpu_index: None,
            gpu_instance: None,
            compute_instance: None,
            pid: None,
            process_name: None,
            message: truncate(message.trim(), MAX_MESSAGE),
            time: stamp.wall,
            uptime_us: stamp.uptime_us,
            implied: true,
        });
    }

    /// Feeds one line or record (any bytes; invalid UTF-8 is replaced).
    pub fn feed(&mut self, raw: &[u8]) {
        self.out.lines += 1;
        let raw = &raw[..raw.len().min(MAX_EXAMINED)];
        let text = String::from_utf8_lossy(raw);
        let line = text.trim_end_matches(['\n', '\r']);
        let (stamp, msg) = split_prefix(line, self.boot_time, self.now);
        let decoded = decode_kmsg_escapes(msg);
        if decoded.contains('\n') {
            // One record holding several lines (an escaped newline): each line with its time.
            for part in decoded.split('\n') {
                let part = part.trim_end_matches('\r');
                if !part.trim().is_empty() {
                    self.message(stamp, part);
                }
            }
        } else {
            self.message(stamp, &decoded);
        }
    }

    fn push_sxid(&mut self, ev: SxidEvent) {
        if self.sxids.len() >= self.max_events {
            self.sxids.pop_front();
            self.out.dropped_events += 1;
        }
        self.sxids.push_back(ev);
    }

    /// One message line with the time of its record.
    fn message(&mut self, stamp: Stamp, msg: &str) {
        if msg.contains("SXid (") {
            if let Some(mut ev) = parse_sxid_line(msg) {
                ev.time = stamp.wall;
                ev.uptime_us = stamp.uptime_us;
                self.push_sxid(ev);
            } else {
                self.out.unparsed_xid_lines += 1;
            }
            return;
        }

        if let Some((pci, st, left)) = self.pending_off_bus.take() {
            if msg.contains("fallen off the bus") {
                let st = if st.uptime_us.is_some() || st.wall.is_some() {
                    st
                } else {
                    stamp
                };
                self.implied_79(
                    pci,
                    st,
                    "GPU has fallen off the bus and is not responding to commands.",
                );
                return;
            }
            if left > 1 && !msg.contains("NVRM: The NVIDIA GPU ") {
                self.pending_off_bus = Some((pci, st, left - 1));
            }
        }

        let Some(at) = msg.find("NVRM: ") else {
            return;
        };
        let body = &msg[at + "NVRM: ".len()..];
        if let Some(x) = body.strip_prefix("Xid (") {
            match parse_xid_body(x) {
                Some(x) => {
                    let ev = XidEvent {
                        xid: x.xid,
                        source: XidSource::KernelLog,
                        pci_bus_id: x.pci_bus_id,
                        gpu_uuid: x.gpu_uuid,
                        gpu_index: None,
                        gpu_instance: x.gpu_instance,
                        compute_instance: x.compute_instance,
                        pid: x.pid,
                        process_name: x.process_name,
                        message: x.message,
                        time: stamp.wall,
                        uptime_us: stamp.uptime_us,
                        implied: false,
                    };
                    self.push(ev);
                }
                None => self.out.unparsed_xid_lines += 1,
            }
        } else if let Some(r) = body.strip_prefix("GPU at PCI:") {
            // "NVRM: GPU at PCI:0000:91:00: GPU-b6c3b2be-..."
            if let Some((pci, uuid)) = r.split_once(": ")
                && let Some(pci) = normalize_pci_bus_id(pci)
            {
                let uuid = uuid.trim();
                if uuid.starts_with("GPU-") && uuid.len() <= 64 {
                    self.out.gpu_uuids.insert(pci, uuid.to_owned());
                }
            }
        } else if let Some(r) = body.strip_prefix("GPU ") {
            // "NVRM: GPU 0000:91:00.0: GPU has fallen off the bus."
            if let Some((pci, text)) = r.split_once(": ")
                && text.contains("fallen off the bus")
                && let Some(pci) = normalize_pci_bus_id(pci)
            {
                self.implied_79(pci, stamp, text);
            }
        } else if let Some(r) = body.strip_prefix("The NVIDIA GPU ") {
            // "NVRM: The NVIDIA GPU 0000:b3:00.0" + continuation lines "... fallen off the bus ..."
            let tok = r.split_whitespace().next().unwrap_or("");
            if let Some(pci) = normalize_pci_bus_id(tok) {
                if r.contains("fallen off the bus") {
                    self.implied_79(pci, stamp, r);
                } else {
                    self.pending_off_bus = Some((pci, stamp, 4));
                }
            }
        }
    }

    /// Feeds a whole buffer, split at newlines.
    pub fn feed_buffer(&mut self, buf: &[u8]) {
        for line in buf.split(|&b| b == b'\n') {
            if !line.is_empty() {
                self.feed(line);
            }
        }
    }

    /// Feeds one `/dev/kmsg` record; its continuation lines (` KEY=value`) carry metadata, not
    /// log text, and are skipped.
    pub fn feed_record(&mut self, record: &[u8]) {
        let first = record.split(|&b| b == b'\n').next().unwrap_or(record);
        self.feed(first);
    }

    /// Returns what was found; events attributed by UUID to the PCI address when the driver
    /// printed the mapping.
    pub fn finish(mut self) -> KernelLogParse {
        let by_uuid: BTreeMap<String, String> = self
            .out
            .gpu_uuids
            .iter()
            .map(|(p, u)| (u.to_ascii_lowercase(), p.clone()))
            .collect();
        for ev in &mut self.events {
            if ev.gpu_uuid.is_none()
                && let Some(pci) = &ev.pci_bus_id
                && let Some(u) = self.out.gpu_uuids.get(pci)
            {
                ev.gpu_uuid = Some(u.clone());
            }
            if ev.pci_bus_id.is_none()
                && let Some(u) = &ev.gpu_uuid
                && let Some(p) = by_uuid.get(&u.to_ascii_lowercase())
            {
                ev.pci_bus_id = Some(p.clone());
            }
        }
        self.out.events = self.events.into();
        self.out.sxids = self.sxids.into();
        self.out
    }
}

/// Parses a whole kernel log held in memory (syslog lines without a year get no time; use
/// [`KernelLogParser::with_now`] to date them).
pub fn parse_kernel_log(buf: &[u8], boot_time: Option<SystemTime>) -> KernelLogParse {
    let mut p = KernelLogParser::new(boot_time);
    p.feed_buffer(buf);
    p.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn normalises_pci_addresses() {
        assert_eq!(
            normalize_pci_bus_id("00000000:3B:00.0").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(
            normalize_pci_bus_id("PCI:0000:3b:00").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(
            normalize_pci_bus_id("0008:01:00").as_deref(),
            Some("0008:01:00.0")
        );
        assert_eq!(
            normalize_pci_bus_id("3b:00.0").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(normalize_pci_bus_id("zz:00"), None);
        assert_eq!(normalize_pci_bus_id("0000:3b:00.9"), None);
        assert_eq!(normalize_pci_bus_id("0000:3b:40.0"), None);
        assert_eq!(normalize_pci_bus_id("0000:3b:00.01"), None);
        assert_eq!(normalize_pci_bus_id(""), None);
    }

    #[test]
    fn parses_kmsg_prefix_with_boot_time() {
        let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let out = parse_kernel_log(
            b"4,1234,5000000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=x, GPU has fallen off the bus.\n",
            Some(boot),
        );
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].uptime_us, Some(5_000_000));
        assert_eq!(out.events[0].time, Some(boot + Duration::from_secs(5)));
    }

    #[test]
    fn multi_line_fallen_off_bus_implies_79() {
        let log = b"[ 10.0] NVRM: The NVIDIA GPU 0000:b3:00.0\n[ 10.0] NVRM: (PCI ID: 10de:26b5) installed in this system has\n[ 10.0] NVRM: fallen off the bus and is not responding to commands.\n";
        let out = parse_kernel_log(log, None);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].xid, 79);
        assert!(out.events[0].implied);
        assert_eq!(out.events[0].pci_bus_id.as_deref(), Some("0000:b3:00.0"));
    }

    #[test]
    fn keeps_only_the_newest_events() {
        let mut p = KernelLogParser::new(None).with_max_events(2);
        for i in 0..5 {
            p.feed(format!("NVRM: Xid (PCI:0000:3b:00): 13, pid={i}, name=a, x").as_bytes());
        }
        let out = p.finish();
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1].pid, Some(4));
        assert_eq!(out.dropped_events, 3);
    }
}
