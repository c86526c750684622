#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The kernel-log parser against real-world line variants and hostile input.

use std::time::{Duration, SystemTime};

use gpu_mcp_model::xid::{KernelLogParser, lookup, parse_kernel_log, parse_xid_line};

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn opt(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

#[test]
fn every_fixture_variant_parses_to_the_expected_fields() {
    let table = fixture("xid-lines.txt");
    let mut cases = 0;
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = row.splitn(7, '\t').collect();
        assert_eq!(cols.len(), 7, "bad fixture row: {row}");
        let line = cols[6];
        // Through the whole-log parser, so record prefixes are handled too.
        let out = parse_kernel_log(line.as_bytes(), None);
        assert_eq!(out.events.len(), 1, "no event from: {line}");
        let ev = &out.events[0];
        assert_eq!(ev.xid.to_string(), cols[0], "xid of: {line}");
        assert_eq!(ev.pci_bus_id.as_deref(), opt(cols[1]), "pci of: {line}");
        assert_eq!(
            ev.pid.map(|p| p.to_string()).as_deref(),
            opt(cols[2]),
            "pid of: {line}"
        );
        assert_eq!(ev.process_name.as_deref(), opt(cols[3]), "name of: {line}");
        let mig = match (ev.gpu_instance, ev.compute_instance) {
            (None, None) => "-".to_owned(),
            (gi, ci) => format!(
                "{}/{}",
                gi.map_or("-".into(), |x| x.to_string()),
                ci.map_or("-".into(), |x| x.to_string())
            ),
        };
        assert_eq!(mig, cols[4], "MIG of: {line}");
        assert_eq!(ev.gpu_uuid.as_deref(), opt(cols[5]), "uuid of: {line}");
        assert!(
            !ev.message.contains("pid="),
            "message keeps fields: {}",
            ev.message
        );
        assert!(!ev.implied);
        cases += 1;
    }
    assert!(cases >= 20, "only {cases} cases");
}

#[test]
fn messages_are_kept_verbatim_after_the_fields() {
    let x = parse_xid_line("NVRM: Xid (PCI:0000:cb:00): 109, pid=1797828, name=pt_main_thread, Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005").unwrap();
    assert_eq!(
        x.message,
        "Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005"
    );
    let y = parse_xid_line("NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.").unwrap();
    assert_eq!(y.message, "GPU has fallen off the bus.");
}

#[test]
fn malformed_lines_are_counted_not_parsed() {
    let text = fixture("xid-malformed.txt");
    let out = parse_kernel_log(text.as_bytes(), None);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(out.unparsed_xid_lines, text.lines().count() as u64);
}

#[test]
fn kmsg_dump_maps_uuid_and_implies_79_without_double_counting() {
    let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let out = parse_kernel_log(fixture("kmsg-xid79.log").as_bytes(), Some(boot));
    assert_eq!(out.events.len(), 2, "{:#?}", out.events);
    let a = &out.events[0];
    assert_eq!((a.xid, a.implied), (79, false));
    assert_eq!(
        a.gpu_uuid.as_deref(),
        Some("GPU-5f0e7a31-8c4d-4b7e-9f1a-2d3c4b5a6978")
    );
    assert_eq!(a.time, Some(boot + Duration::from_micros(7_200_000_200)));
    let b = &out.events[1];
    assert_eq!((b.xid, b.implied), (79, true));
    assert_eq!(b.pci_bus_id.as_deref(), Some("0000:5d:00.0"));
    assert_eq!(out.gpu_uuids.len(), 1);
}

#[test]
fn dmesg_multi_line_fall_off_the_bus_is_found() {
    let out = parse_kernel_log(fixture("dmesg-fallen-off.log").as_bytes(), None);
    let codes: Vec<(u32, bool, Option<&str>)> = out
        .events
        .iter()
        .map(|e| (e.xid, e.implied, e.pci_bus_id.as_deref()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (79, true, Some("0000:b3:00.0")),
            (13, false, Some("0000:18:00.0"))
        ]
    );
    assert_eq!(out.events[0].uptime_us, Some(8_123_101_010));
}

#[test]
fn binary_junk_huge_lines_and_truncated_records_never_break_the_parser() {
    let mut log: Vec<u8> = Vec::new();
    // Binary junk, including invalid UTF-8 and NULs.
    log.extend((0..=255u8).cycle().take(64 * 1024));
    log.push(b'\n');
    // A 1 MiB line with an Xid marker buried far past the examined prefix.
    let mut huge = vec![b'A'; 1024 * 1024];
    huge.extend_from_slice(b"NVRM: Xid (PCI:0000:3b:00): 79, far away");
    log.extend_from_slice(&huge);
    log.push(b'\n');
    // A 1 MiB line that starts like an Xid line.
    log.extend_from_slice(b"NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=");
    log.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    log.push(b'\n');
    // Truncated kmsg records.
    log.extend_from_slice(b"4,1,2\n4,1,;NVRM: Xid (PCI:0000:3b:00): 48,\n4,\xff\xfe;NVRM\n");
    // A good line at the end must still be found.
    log.extend_from_slice(
        b"[ 1.000000] NVRM: Xid (PCI:0000:3b:00): 95, pid=5, name=a, Uncontained\n",
    );
    // A record truncated mid-line with no newline.
    log.extend_from_slice(b"4,9,9,-;NVRM: Xid (PCI:0000:3");
    let out = parse_kernel_log(&log, None);
    let codes: Vec<u32> = out.events.iter().map(|e| e.xid).collect();
    assert!(codes.contains(&95), "{codes:?}");
    assert!(
        !codes.contains(&79),
        "marker beyond the examined prefix: {codes:?}"
    );
    assert!(out.events.iter().all(|e| e.message.len() <= 1100));
}

#[test]
fn incremental_feeding_matches_whole_buffer_parsing() {
    let text = fixture("kmsg-xid79.log");
    let mut p = KernelLogParser::new(None);
    for line in text.lines() {
        p.feed(line.as_bytes());
    }
    assert_eq!(p.finish(), parse_kernel_log(text.as_bytes(), None));
}

#[test]
fn unknown_codes_are_reported_as_unknown() {
    let out = parse_kernel_log(b"NVRM: Xid (PCI:0000:3b:00): 999, pid=1, name=x, new", None);
    let info = lookup(out.events[0].xid);
    assert!(!info.known);
    assert_eq!(info.code, 999);
}

fn at(rfc3339: &str) -> SystemTime {
    gpu_mcp_model::time::parse_rfc3339(rfc3339).unwrap()
}

#[test]
fn kmsg_escapes_are_decoded_and_an_escaped_newline_splits_the_record() {
    // /dev/kmsg escapes the newlines of the driver's multi-line notice as \x0a.
    let boot = at("2026-03-01T00:00:00Z");
    let log = b"3,900,12000000,-;NVRM: The NVIDIA GPU 0000:b3:00.0\\x0aNVRM: (PCI ID: 10de:2330) installed in this system has\\x0aNVRM: fallen off the bus and is not responding to commands.\n";
    let out = parse_kernel_log(log, Some(boot));
    assert_eq!(out.events.len(), 1, "{out:?}");
    let ev = &out.events[0];
    assert_eq!((ev.xid, ev.implied), (79, true));
    assert_eq!(ev.pci_bus_id.as_deref(), Some("0000:b3:00.0"));
    assert_eq!(ev.time, Some(boot + Duration::from_secs(12)));
    assert!(!ev.message.contains("\\x0a"), "{}", ev.message);
    // An escaped backslash is a backslash, not the start of another escape.
    let out = parse_kernel_log(
        b"3,901,13000000,-;NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=a\\x5cb, Graphics Exception\n",
        Some(boot),
    );
    assert_eq!(out.events[0].process_name.as_deref(), Some("a\\b"));
}

#[test]
fn every_common_timestamp_format_is_dated() {
    let now = at("2026-03-10T12:00:00Z");
    let boot = at("2026-03-10T00:00:00Z");
    let xid = "NVRM: Xid (PCI:0000:3b:00): 48, pid=1, name=x, An uncorrectable double bit error";
    let cases = [
        // dmesg, monotonic seconds since boot.
        (
            format!("[ 3600.250000] {xid}"),
            at("2026-03-10T01:00:00.25Z"),
        ),
        // /dev/kmsg: prio,seq,usec,flags;
        (
            format!("3,42,7200000000,-;{xid}"),
            at("2026-03-10T02:00:00Z"),
        ),
        // dmesg -T (read as UTC).
        (
            format!("[Tue Mar 10 03:04:05 2026] {xid}"),
            at("2026-03-10T03:04:05Z"),
        ),
        // journalctl -o short-iso / rsyslog RFC 3339.
        (
            format!("2026-03-10T04:05:06+0000 node1 kernel: {xid}"),
            at("2026-03-10T04:05:06Z"),
        ),
        (
            format!("2026-03-10T05:06:07.123456+01:00 node1 kernel: {xid}"),
            at("2026-03-10T04:06:07.123456Z"),
        ),
        // syslog / journalctl short, no year: this year.
        (
            format!("Mar 10 06:07:08 node1 kernel: {xid}"),
            at("2026-03-10T06:07:08Z"),
        ),
        (
            format!("Mar  9 06:07:08 node1 kernel: [ 12.5] {xid}"),
            at("2026-03-09T06:07:08Z"),
        ),
        // A December line read in March is last year's.
        (
            format!("Dec 31 23:59:59 node1 kernel: {xid}"),
            at("2025-12-31T23:59:59Z"),
        ),
    ];
    for (line, want) in cases {
        let mut p = KernelLogParser::new(Some(boot)).with_now(now);
        p.feed(line.as_bytes());
        let out = p.finish();
        assert_eq!(out.events.len(), 1, "no event from: {line}");
        assert_eq!(out.events[0].xid, 48, "{line}");
        assert_eq!(out.events[0].time, Some(want), "time of: {line}");
    }
}

#[test]
fn a_line_whose_time_cannot_be_told_is_undated() {
    let xid = "NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=x, GPU has fallen off the bus.";
    // No prefix at all, dmesg without a boot time, syslog without "now".
    for line in [
        xid.to_owned(),
        format!("[ 12.5] {xid}"),
        format!("Mar 10 06:07:08 node1 kernel: {xid}"),
    ] {
        let out = parse_kernel_log(line.as_bytes(), None);
        assert_eq!(out.events.len(), 1, "{line}");
        assert_eq!(out.events[0].time, None, "{line}");
    }
}

#[test]
fn nvswitch_sxid_lines_are_parsed() {
    let boot = at("2026-03-10T00:00:00Z");
    let log = b"[ 4235.500000] nvidia-nvswitch2: SXid (PCI:0000:b7:00.0): 12028, Non-fatal, Link 46 egress non-posted PRIV error (First)\n\
[ 4236.000000] nvidia-nvswitch4: SXid (PCI:0000:87:00.0): 20034, Fatal, Link 30 LTSSM Fault Up\n\
[ 4237.000000] nvidia-nvswitch4: SXid (PCI:0000:87:00.0): junk\n";
    let out = parse_kernel_log(log, Some(boot));
    assert!(out.events.is_empty(), "SXids are not GPU Xids");
    assert_eq!(out.sxids.len(), 2);
    let a = &out.sxids[0];
    assert_eq!(a.sxid, 12028);
    assert_eq!(a.fatal, Some(false));
    assert_eq!(a.link, Some(46));
    assert_eq!(a.pci_bus_id.as_deref(), Some("0000:b7:00.0"));
    assert_eq!(a.switch.as_deref(), Some("nvidia-nvswitch2"));
    assert_eq!(a.instance, Some(2));
    assert_eq!(a.time, Some(boot + Duration::from_micros(4_235_500_000)));
    let b = &out.sxids[1];
    assert_eq!((b.sxid, b.fatal, b.link), (20034, Some(true), Some(30)));
    assert!(b.message.contains("LTSSM"));
    assert_eq!(out.unparsed_xid_lines, 1);
}

#[test]
fn every_code_the_parser_emits_from_the_fixtures_is_in_the_catalog() {
    let mut seen = Vec::new();
    for name in [
        "xid-lines.txt",
        "kmsg-xid79.log",
        "dmesg-fallen-off.log",
        "xid-malformed.txt",
    ] {
        let out = parse_kernel_log(fixture(name).as_bytes(), None);
        seen.extend(out.events.iter().map(|e| e.xid));
    }
    // The parser's own implied event (a "fallen off the bus" line without an Xid line).
    seen.push(79);
    assert!(seen.len() > 3, "the fixtures produced too few events");
    // 999 is the fixtures' deliberately unknown code (the `known: false` path).
    for code in seen.into_iter().filter(|&c| c != 999) {
        assert!(
            lookup(code).known,
            "Xid {code} is emitted but not in the catalog"
        );
    }
}

#[test]
fn every_sxid_the_parser_emits_resolves_in_the_catalog() {
    use gpu_mcp_model::xid::{XidSeverity, lookup_sxid, sxid_class};
    let log = b"nvidia-nvswitch3: SXid (PCI:0000:c1:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error (First)\n\
[ 10.0] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 24007, Fatal, Link 44 sourcetrack timeout error (First)\n\
6,99,5000000,-;nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 30 LTSSM Fault Up\n\
Mar 10 06:07:08 node1 kernel: nvidia-nvswitch5: SXid (PCI:0000:07:00.0): 99999, Non-fatal, Link 2 something new\n\
[Wed Mar  5 10:12:13 2025] nvidia-nvswitch5: SXid (PCI:0000:07:00.0): 88888, Fatal, no link named\n";
    let out = parse_kernel_log(log, None);
    assert_eq!(out.sxids.len(), 5);
    for ev in &out.sxids {
        let info = lookup_sxid(ev.sxid, ev.fatal);
        assert_eq!(info.code, ev.sxid);
        assert_eq!(Some(info.fatal), ev.fatal, "the line's word decides");
        let expected = if info.fatal {
            XidSeverity::Critical
        } else {
            XidSeverity::Warning
        };
        assert_eq!(info.severity, expected);
        assert!(!info.name.is_empty() && !info.action.is_empty());
        assert_eq!(info.known, sxid_class(ev.sxid).is_some(), "{}", ev.sxid);
    }
    assert_eq!(out.sxids[0].instance, Some(3));
    assert_eq!(out.sxids[0].pci_bus_id.as_deref(), Some("0000:c1:00.0"));
    assert_eq!(out.sxids[1].link, Some(44));
    assert!(!lookup_sxid(99_999, out.sxids[3].fatal).known);
    assert_eq!(out.sxids[4].link, None);
    assert_eq!(out.sxids[4].sxid, 88_888);
}
