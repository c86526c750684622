//! The kernel-log parser of `gpu-mcp-model` (Xid, SXid, fallen-off-the-bus and GPU-UUID lines,
//! in every record format: `/dev/kmsg` records, `dmesg` with monotonic or human times, syslog
//! and RFC 3339 prefixes) on arbitrary bytes.
//!
//! The first bytes choose the boot time, the time of reading and the event cap; the rest is the
//! log. It never panics, it counts every non-empty line, keeps its caps and message bound,
//! normalises every PCI address to a fixed point, and parsing the log in two pieces cut at a
//! line boundary gives what parsing it whole gives.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use gpu_mcp_model::xid::{
    KernelLogParser, assess, lookup, lookup_sxid, normalize_pci_bus_id, parse_sxid_line,
    parse_xid_line,
};
use libfuzzer_sys::fuzz_target;

/// The parser's bound on a kept message, plus the ellipsis that marks a cut one.
const MAX_MESSAGE: usize = 1024 + '…'.len_utf8();

fuzz_target!(|data: &[u8]| {
    let Some((head, log)) = data.split_first_chunk::<6>() else {
        return;
    };
    let boot = (head[0] & 1 == 1).then(|| {
        UNIX_EPOCH + Duration::from_secs(u64::from(u16::from_le_bytes([head[1], head[2]])) << 16)
    });
    let now = (head[0] & 2 == 2).then(|| {
        UNIX_EPOCH + Duration::from_secs(u64::from(u16::from_le_bytes([head[3], head[4]])) << 16)
    });
    let max = usize::from(head[5] % 8) + 1;
    let parser = || {
        let parser = KernelLogParser::new(boot).with_max_events(max);
        match now {
            Some(now) => parser.with_now(now),
            None => parser,
        }
    };

    let mut whole = parser();
    whole.feed_buffer(log);
    let whole = whole.finish();

    let lines = log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(whole.lines, lines as u64);
    assert!(whole.events.len() <= max && whole.sxids.len() <= max);
    for event in &whole.events {
        assert!(event.message.len() <= MAX_MESSAGE);
        if let Some(pci) = &event.pci_bus_id {
            assert_eq!(normalize_pci_bus_id(pci).as_deref(), Some(pci.as_str()));
        }
        let _ = lookup(event.xid);
        let _ = assess(event.xid, &event.message);
    }
    for sxid in &whole.sxids {
        assert!(sxid.message.len() <= MAX_MESSAGE);
        if let Some(pci) = &sxid.pci_bus_id {
            assert_eq!(normalize_pci_bus_id(pci).as_deref(), Some(pci.as_str()));
        }
        let info = lookup_sxid(sxid.sxid, sxid.fatal);
        if let Some(fatal) = sxid.fatal {
            // The line's own word decides, except that an always-fatal code is fatal anyway.
            assert!(info.fatal == fatal || info.fatal);
        }
    }
    for pci in whole.gpu_uuids.keys() {
        assert_eq!(normalize_pci_bus_id(pci).as_deref(), Some(pci.as_str()));
    }

    // Cut at a line boundary, fed in two buffers: the same parse.
    if let Some(cut) = log.iter().position(|&b| b == b'\n') {
        let mut pieces = parser();
        pieces.feed_buffer(&log[..=cut]);
        pieces.feed_buffer(&log[cut + 1..]);
        assert_eq!(
            pieces.finish(),
            whole,
            "the parse depends on how the log was cut"
        );
    }

    // The one-line readers, on each line as the parser sees it.
    for line in log.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let _ = parse_xid_line(&text);
        let _ = parse_sxid_line(&text);
    }
    let mut record = parser();
    record.feed_record(log);
    assert_eq!(record.finish().lines, 1);
});
