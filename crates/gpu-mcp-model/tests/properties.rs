//! Properties of what a node's kernel log and a client's arguments feed this crate: the
//! kernel-log parser never panics on any bytes and keeps its bounds, a well-formed Xid line in
//! any record format is read back with its fields, PCI addresses normalise to a fixed point, and
//! the time parsers never panic, stay within their bounds and round-trip what they format; a log
//! cut at a line boundary parses as the whole, and the tools' argument types accept only the
//! properties their input schemas list, and any prompt arguments render or are refused. The fuzz targets `kernel_log` and `tool_arguments`
//! (`cargo xtask fuzz`) hunt the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gpu_mcp_model::args::{HealthArgs, InventoryArgs, XidArgs};
use gpu_mcp_model::processes::GpuProcessesArgs;
use gpu_mcp_model::prompts::{PromptScope, gpu_prompts, render_prompt, static_completion};
use gpu_mcp_model::time::{format_rfc3339, parse_rfc3339, parse_since, parse_window};
use gpu_mcp_model::topology::TopologyArgs;
use gpu_mcp_model::xid::{
    KernelLogParser, normalize_pci_bus_id, parse_kernel_log, parse_sxid_line, parse_xid_line,
};
use gpu_mcp_model::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
    gpu_tool_definitions,
};
use proptest::prelude::*;
use serde_json::Value;

/// 256 cases, or `PROPTEST_CASES` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

/// Text that looks like kernel-log lines often enough to reach the parser's deeper branches.
fn log_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "NVRM: Xid (",
            "PCI:",
            "0000:3b:00",
            "3b:00.0",
            "): ",
            "79",
            ", ",
            "pid=",
            "'<unknown>'",
            "name=",
            "GPU-I:",
            "GPU-CI:",
            "GPU-0123abcd-",
            "SXid (",
            "nvidia-nvswitch0: ",
            "Fatal",
            "Non-fatal",
            "Link ",
            "fallen off the bus",
            "NVRM: The NVIDIA GPU ",
            "NVRM: GPU at PCI:",
            "NVRM: GPU ",
            "6,1234,5678901,-;",
            "[12345.678901] ",
            "[Mon May  1 12:34:56 2024] ",
            "2026-01-31T12:00:00Z ",
            "May  1 12:34:56 host kernel: ",
            "\\x0a",
            "\\x",
            "\n",
            "\r",
            "]",
            "[",
            ";",
            ")",
            "(",
            ":",
            ".",
            " ",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
        "[0-9]{1,12}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Argument names the tools take, mixed with others.
fn argument_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "gpu_index", "gpu_uuid", "sections", "full", "xid_since", "since", "limit",
            "namespace", "pod", "node",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
}

fn argument_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "30m",
            "7d",
            "2026-01-31T12:00:00Z",
            "GPU-0",
            "memory",
            ""
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(serde_json::json!(["identity", "memory"])),
    ]
}

/// Whether `arguments` parse as `T` (the server core reads them with serde as well).
fn accepts<T: serde::de::DeserializeOwned>(arguments: &serde_json::Map<String, Value>) -> bool {
    serde_json::from_value::<T>(Value::Object(arguments.clone())).is_ok()
}

fn boot_time() -> impl Strategy<Value = Option<SystemTime>> {
    prop::option::of((0u64..=1 << 40).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)))
}

fn pci() -> impl Strategy<Value = (u32, u8, u8)> {
    (0u32..=0xffff, any::<u8>(), 0u8..0x20)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_parse_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        boot in boot_time(),
    ) {
        let parse = parse_kernel_log(&bytes, boot);
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        prop_assert_eq!(parse.lines, lines as u64);
        for event in &parse.events {
            prop_assert!(event.message.len() <= 1024 + '…'.len_utf8());
        }
    }

    #[test]
    fn log_like_text_parses_without_panicking(
        text in log_text(),
        boot in boot_time(),
        now in prop::option::of((0u64..=1 << 36).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))),
        max in 1usize..4,
    ) {
        let mut parser = KernelLogParser::new(boot).with_max_events(max);
        if let Some(now) = now {
            parser = parser.with_now(now);
        }
        parser.feed_buffer(text.as_bytes());
        parser.feed_record(text.as_bytes());
        let parse = parser.finish();
        prop_assert!(parse.events.len() <= max && parse.sxids.len() <= max);
        let _ = parse_xid_line(&text);
        let _ = parse_sxid_line(&text);
    }

    #[test]
    fn a_log_cut_at_a_line_boundary_parses_as_the_whole(
        text in log_text(),
        more in log_text(),
        boot in boot_time(),
        max in 1usize..4,
    ) {
        // The reader feeds the parser one buffer at a time; where a read ends must not matter.
        let log = format!("{text}\n{more}");
        let parser = || KernelLogParser::new(boot).with_max_events(max);
        let mut whole = parser();
        whole.feed_buffer(log.as_bytes());
        let whole = whole.finish();
        let mut pieces = parser();
        pieces.feed_buffer(format!("{text}\n").as_bytes());
        pieces.feed_buffer(more.as_bytes());
        prop_assert_eq!(pieces.finish(), whole.clone());
        // Every address the parse reports is already normal.
        let addresses = whole
            .events
            .iter()
            .filter_map(|e| e.pci_bus_id.as_deref())
            .chain(whole.sxids.iter().filter_map(|e| e.pci_bus_id.as_deref()))
            .chain(whole.gpu_uuids.keys().map(String::as_str));
        for pci in addresses {
            let normal = normalize_pci_bus_id(pci);
            prop_assert_eq!(normal.as_deref(), Some(pci));
        }
    }

    #[test]
    fn tool_arguments_accept_only_what_the_input_schema_lists(
        members in prop::collection::vec((argument_name(), argument_value()), 0..5),
    ) {
        let arguments: serde_json::Map<String, Value> = members.into_iter().collect();
        for tool in gpu_tool_definitions() {
            let accepted = match tool.name.as_str() {
                GET_GPU_INVENTORY => accepts::<InventoryArgs>(&arguments),
                GET_GPU_HEALTH => accepts::<HealthArgs>(&arguments),
                ANALYZE_XID_ERRORS => accepts::<XidArgs>(&arguments),
                GET_GPU_PROCESSES => accepts::<GpuProcessesArgs>(&arguments),
                GET_NVLINK_TOPOLOGY => accepts::<TopologyArgs>(&arguments),
                _ => continue,
            };
            let listed = tool.input_schema.get("properties").and_then(Value::as_object);
            if accepted {
                for key in arguments.keys() {
                    prop_assert!(
                        listed.is_some_and(|p| p.contains_key(key)),
                        "{} accepted `{}`, which its inputSchema does not list",
                        tool.name,
                        key
                    );
                }
            }
        }
    }

    #[test]
    fn any_prompt_arguments_render_or_are_refused_without_panicking(
        members in prop::collection::vec(
            (
                prop::sample::select(vec!["gpu", "since", "node", "other"]),
                prop_oneof![any::<String>(), "(GPU-|gpu)[ -~\u{80}-\u{10ffff}]{0,12}"],
            ),
            0..4,
        ),
    ) {
        let arguments: std::collections::BTreeMap<String, String> =
            members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for scope in [PromptScope::Node, PromptScope::Fleet] {
            for prompt in gpu_prompts(scope) {
                let _ = render_prompt(scope, &prompt.name, &arguments);
                for (argument, prefix) in &arguments {
                    let _ = static_completion(scope, &prompt.name, argument, prefix);
                }
            }
        }
    }

    #[test]
    fn a_well_formed_xid_line_is_read_in_every_record_format(
        (domain, bus, dev) in pci(),
        xid in 1u32..1_000_000,
        pid in prop::option::of(any::<u32>()),
        name in "[a-zA-Z0-9_./-]{1,32}",
        message in "[ -~]{0,80}",
        prefix in prop::sample::select(vec![
            "", "6,1234,5678901,-;", "[12345.678901] ", "[Mon May  1 12:34:56 2024] ",
            "2026-01-31T12:00:00Z ", "May  1 12:34:56 host kernel: ",
        ]),
    ) {
        let process = match pid {
            Some(pid) => format!("pid={pid}, name={name}, "),
            None => String::new(),
        };
        let line = format!(
            "{prefix}NVRM: Xid (PCI:{domain:04x}:{bus:02x}:{dev:02x}): {xid}, {process}{message}"
        );
        let parse = parse_kernel_log(line.as_bytes(), Some(UNIX_EPOCH));
        prop_assert_eq!(parse.events.len(), 1, "{}", line);
        let event = &parse.events[0];
        prop_assert_eq!(event.xid, xid);
        // The kernel log names no function: a GPU is function 0.
        let expected_pci = format!("{domain:04x}:{bus:02x}:{dev:02x}.0");
        prop_assert_eq!(event.pci_bus_id.as_deref(), Some(expected_pci.as_str()));
        prop_assert_eq!(event.pid, pid);
        if pid.is_some() {
            prop_assert_eq!(event.process_name.as_deref(), Some(name.as_str()));
        }
        prop_assert_eq!(parse.unparsed_xid_lines, 0);
    }

    #[test]
    fn a_well_formed_sxid_line_is_read_in_every_record_format(
        (domain, bus, dev) in pci(),
        function in 0u8..8,
        instance in 0u32..64,
        sxid in 1u32..1_000_000,
        fatal in any::<bool>(),
        link in prop::option::of(0u32..128),
        message in "[ -~]{0,80}",
        prefix in prop::sample::select(vec![
            "", "6,1234,5678901,-;", "[12345.678901] ", "[Mon May  1 12:34:56 2024] ",
            "2026-01-31T12:00:00Z ", "May  1 12:34:56 host kernel: ",
        ]),
    ) {
        let word = if fatal { "Fatal" } else { "Non-fatal" };
        let link_text = link.map_or(String::new(), |l| format!("Link {l} "));
        let line = format!(
            "{prefix}nvidia-nvswitch{instance}: SXid (PCI:{domain:04x}:{bus:02x}:{dev:02x}.{function}): {sxid}, {word}, {link_text}{message}"
        );
        let parse = parse_kernel_log(line.as_bytes(), Some(UNIX_EPOCH));
        prop_assert_eq!(parse.sxids.len(), 1, "{}", line);
        prop_assert!(parse.events.is_empty());
        let ev = &parse.sxids[0];
        prop_assert_eq!(ev.sxid, sxid);
        prop_assert_eq!(ev.fatal, Some(fatal));
        prop_assert_eq!(ev.instance, Some(instance));
        let expected_pci = format!("{domain:04x}:{bus:02x}:{dev:02x}.{function}");
        prop_assert_eq!(ev.pci_bus_id.as_deref(), Some(expected_pci.as_str()));
        if link.is_some() {
            prop_assert_eq!(ev.link, link);
        }
        let info = gpu_mcp_model::xid::lookup_sxid(ev.sxid, ev.fatal);
        prop_assert_eq!(info.fatal, fatal);
    }

    #[test]
    fn pci_addresses_normalise_to_a_fixed_point(raw in prop_oneof![
        any::<String>(),
        "(PCI:)?[0-9a-fA-F]{0,9}:[0-9a-fA-F]{0,3}:[0-9a-fA-F]{0,3}(\\.[0-9a-fA-F])?",
    ]) {
        if let Some(normal) = normalize_pci_bus_id(&raw) {
            let again = normalize_pci_bus_id(&normal);
            prop_assert_eq!(again.as_deref(), Some(normal.as_str()));
            let (address, function) = normal.split_once('.').unwrap();
            prop_assert!(address.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()));
            prop_assert!(function.len() == 1 && function < "8", "{}", normal);
        }
    }

    #[test]
    fn timestamps_round_trip(secs in 0u64..253_402_300_800, nanos in 0u32..1_000_000_000) {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        let text = format_rfc3339(t + Duration::from_nanos(u64::from(nanos)));
        prop_assert_eq!(parse_rfc3339(&text), Some(t), "{}", text);
        let with_fraction = text.replace('Z', &format!(".{nanos:09}Z"));
        prop_assert_eq!(
            parse_rfc3339(&with_fraction),
            Some(t + Duration::from_nanos(u64::from(nanos)))
        );
    }

    #[test]
    fn any_text_is_a_time_or_not_without_panicking(
        s in prop_oneof![
            any::<String>(),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[T t][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
            "([0-9]{0,10}[smhdw]){0,4}",
        ],
        now in 0u64..=1 << 36,
    ) {
        let _ = parse_rfc3339(&s);
        if let Some(window) = parse_window(&s) {
            prop_assert!(window > Duration::ZERO && window <= Duration::from_secs(400 * 86_400));
        }
        let now = UNIX_EPOCH + Duration::from_secs(now);
        if let Ok(since) = parse_since(&s, now)
            && parse_window(&s).is_some()
        {
            prop_assert!(since <= now);
        }
    }

    #[test]
    fn windows_are_the_sum_of_their_parts(parts in prop::collection::vec((1u64..1000, 0usize..5), 1..4)) {
        let units = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)];
        let text: String = parts.iter().map(|(n, u)| format!("{n}{}", units[*u].0)).collect();
        let total: u64 = parts.iter().map(|(n, u)| n * units[*u].1).sum();
        let expected = (total <= 400 * 86_400).then(|| Duration::from_secs(total));
        prop_assert_eq!(parse_window(&text), expected, "{}", text);
    }
}
