//! The built agent in real mode (`--nvml-mode real --nvml-library-path …`) on the project's fake
//! `libnvidia-ml.so.1`: every scenario in `crates/gpu-mcp-fake-nvml/tests/scenarios/` read
//! through `get_gpu_health`, with the verdict the scenario's `expect` names on its GPU and every
//! other GPU healthy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use gpu_mcp_fake_nvml::{FakeNvml, SCENARIO_ENV, fixture, fixture_names};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// A live stdio session with an agent reading the fake driver.
struct Session {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: i64,
    _fake: FakeNvml,
}

impl Session {
    /// Starts the agent on a private copy of the library; the scenario reaches the library
    /// through `FAKE_NVML_SCENARIO`, as it would for any process under test.
    async fn start(scenario_json: &str) -> Session {
        Session::start_with(scenario_json, &[]).await
    }

    /// As [`Session::start`], with more agent flags.
    async fn start_with(scenario_json: &str, extra: &[&str]) -> Session {
        let fake = FakeNvml::install_for_env(scenario_json).unwrap();
        let lib = fake.library_path().to_str().unwrap().to_owned();
        let mut args = vec![
            "--nvml-mode",
            "real",
            "--nvml-library-path",
            &lib,
            "--snapshot-max-age",
            "0",
        ];
        args.extend_from_slice(extra);
        let mut child = common::agent(&args)
            .env(SCENARIO_ENV, fake.scenario_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut s = Session {
            _child: child,
            stdin,
            lines,
            next_id: 1,
            _fake: fake,
        };
        let init = s
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "fake-nvml-test", "version": "0"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "{init}");
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        s
    }

    async fn send(&mut self, m: Value) {
        let mut line = serde_json::to_vec(&m).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let deadline = Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout(deadline, self.lines.next_line())
                .await
                .expect("the agent did not answer (hang guard)")
                .unwrap()
                .expect("the agent closed stdout");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
        }
    }

    /// A tool's structured result (panics on a tool error).
    async fn tool(&mut self, name: &str) -> Value {
        self.tool_with(name, json!({})).await
    }

    /// A tool's structured result for `arguments` (panics on a tool error).
    async fn tool_with(&mut self, name: &str, arguments: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        let result = &r["result"];
        assert_ne!(result["isError"], json!(true), "{r}");
        result["structuredContent"].clone()
    }
}

const ORDER: [&str; 4] = ["healthy", "warning", "degraded", "critical"];

fn rank(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("?");
    ORDER
        .iter()
        .position(|o| *o == s)
        .unwrap_or_else(|| panic!("unknown verdict {v}"))
}

/// Everything a GPU's health says, lower-cased, for `mentions`.
fn text_of(g: &Value) -> String {
    let mut t = String::new();
    for r in g["reasons"].as_array().into_iter().flatten() {
        for k in ["check", "summary", "observed", "action"] {
            t.push_str(r[k].as_str().unwrap_or(""));
            t.push('\n');
        }
    }
    for k in ["notes", "not_checked"] {
        for n in g[k].as_array().into_iter().flatten() {
            t.push_str(n.as_str().unwrap_or(""));
            t.push('\n');
        }
    }
    t.to_lowercase()
}

fn has_xid_finding(report: &Value) -> bool {
    report["gpus"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["reasons"].as_array().into_iter().flatten())
        .any(|r| r["check"] == "recent_xid")
        || report["node_findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
}

/// Runs the scenario `name` through `get_gpu_health` and checks its `expect`.
async fn run_fixture(name: &str) {
    let text = fixture(name).unwrap();
    let scenario: Value = serde_json::from_str(&text).unwrap();
    let expect = &scenario["expect"];
    let mut s = Session::start(&text).await;
    let mut report = s.tool("get_gpu_health").await;
    if scenario.get("events").is_some() {
        // The recorder delivers events on its own thread: ask again until they count.
        let start = Instant::now();
        while !has_xid_finding(&report) && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            report = s.tool("get_gpu_health").await;
        }
    }
    assert_eq!(report["backend"], "nvml", "{name}");
    let gpus = report["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8, "{name}");
    let target = expect["gpu"].as_u64();
    for g in gpus {
        if Some(g["index"].as_u64().unwrap()) == target {
            continue;
        }
        assert_eq!(g["verdict"], "healthy", "{name}: GPU {}: {g}", g["index"]);
        assert_eq!(g["reasons"], json!([]), "{name}: GPU {}", g["index"]);
    }
    assert_eq!(
        report["node_findings"],
        json!([]),
        "{name}: findings outside the GPUs"
    );
    let Some(target) = target else {
        assert_eq!(expect["all"], "healthy", "{name}: no expectation");
        assert_eq!(report["verdict"], "healthy", "{name}");
        return;
    };
    let g = &gpus[target as usize];
    let got = rank(&g["verdict"]);
    if let Some(v) = expect.get("verdict") {
        assert_eq!(got, rank(v), "{name}: GPU {target}: {g}");
    }
    if let Some(v) = expect.get("verdict_min") {
        assert!(got >= rank(v), "{name}: GPU {target} below {v}: {g}");
    }
    if let Some(v) = expect.get("verdict_max") {
        assert!(got <= rank(v), "{name}: GPU {target} above {v}: {g}");
    }
    if let Some(c) = expect.get("check") {
        let checks: Vec<&Value> = g["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["check"])
            .collect();
        assert!(checks.contains(&c), "{name}: no {c} finding in {checks:?}");
    }
    if let Some(m) = expect["mentions"].as_str() {
        assert!(
            text_of(g).contains(&m.to_lowercase()),
            "{name}: GPU {target} does not mention {m:?}: {g}"
        );
    }
    if let Some(m) = expect["not_checked"].as_str() {
        let listed = g["not_checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap_or("").to_lowercase().contains(m));
        assert!(listed, "{name}: {m:?} not in not_checked: {g}");
    }
    assert_eq!(report["verdict"], g["verdict"], "{name}: node verdict");
}

macro_rules! fixtures {
    ($( $(#[$meta:meta])* $test:ident => $name:literal; )*) => {
        $(
            $(#[$meta])*
            #[tokio::test]
            async fn $test() {
                run_fixture($name).await;
            }
        )*
        /// The scenarios these tests read.
        const COVERED: &[&str] = &[$($name),*];
    };
}

fixtures! {
    healthy_server => "healthy";
    old_driver_without_field_values => "old-driver-no-field-values";
    temperature_near_shutdown => "temperature-near-shutdown";
    temperature_slowdown => "temperature-slowdown";
    temperature_above_max_operating => "temperature-above-max-operating";
    memory_temperature => "memory-temperature";
    hw_slowdown => "hw-slowdown";
    hw_thermal_slowdown => "hw-thermal-slowdown";
    power_brake => "power-brake";
    sw_thermal_slowdown => "sw-thermal-slowdown";
    power_over_limit_once => "power-over-limit-once";
    power_capped => "power-capped";
    ecc_disabled => "ecc-disabled";
    ecc_uncorrectable => "ecc-uncorrectable";
    row_remap_failure => "row-remap-failure";
    row_remap_pending => "row-remap-pending";
    row_remap_capacity => "row-remap-capacity";
    retired_pages_limit => "retired-pages-limit";
    retired_pages_pending => "retired-pages-pending";
    pcie_width => "pcie-width";
    pcie_generation_under_load => "pcie-generation-under-load";
    pcie_generation_idle => "pcie-generation-idle";
    pcie_replays_lifetime => "pcie-replays-lifetime";
    nvlink_link_down => "nvlink-link-down";
    nvlink_all_down => "nvlink-all-down";
    nvlink_disabled => "nvlink-disabled";
    nvlink_not_wired => "nvlink-not-wired";
    nvlink_lifetime_counters => "nvlink-lifetime-counters";
    nvlink_counters_unsupported => "nvlink-counters-unsupported";
    persistence_off => "persistence-off";
    recovery_gpu_reset => "recovery-gpu-reset";
    recovery_node_reboot => "recovery-node-reboot";
    recovery_drain_p2p => "recovery-drain-p2p";
    recovery_drain_and_reset => "recovery-drain-and-reset";
    recovery_recover_imex_domain => "recovery-recover-imex-domain";
    recovery_bus_reset => "recovery-bus-reset";
    recovery_system_reboot => "recovery-system-reboot";
    mig_pending => "mig-pending";
    mig_instances => "mig-instances";
    mig_ecc_uncorrectable => "mig-ecc-uncorrectable";
    mig_pcie_idle => "mig-pcie-idle";
    compute_prohibited => "compute-prohibited";
    gpu_lost_handle => "gpu-lost-handle";
    gpu_lost_calls => "gpu-lost-calls";
    handle_unknown => "handle-unknown";
    no_permission => "no-permission";
    reset_required => "reset-required";
    unknown_every_call => "unknown-every-call";
    insufficient_power => "insufficient-power";
    unresponsive_gpu => "unresponsive-gpu";
    xid_48_event => "xid-48-event";
    xid_79_event_lost => "xid-79-event-lost";
    xid_94_mig_instance => "xid-94-mig-instance";
    fabric_in_progress => "fabric-in-progress";
    fabric_not_started => "fabric-not-started";
    fabric_registration_failed => "fabric-registration-failed";
    fabric_bandwidth_degraded => "fabric-bandwidth-degraded";
    fabric_old_driver => "fabric-old-driver";
    p2p_disabled => "p2p-disabled";
    topology_unsupported => "topology-unsupported";
}

/// Scenarios with their own tests (here or in the backend's `tests/fake_nvml.rs`), not read
/// by the generic check.
const OWN_TESTS: &[&str] = &[
    "device-count-error",
    "device-count-hang",
    "events-registration-refused",
    "events-wait-lost",
    "first-read-slow-handle",
    "init-driver-not-loaded",
    "init-hang",
    "init-version-mismatch",
    "numa-from-sysfs",
    "nvswitch-two-halves",
];

#[test]
fn every_scenario_is_tested() {
    for name in fixture_names().unwrap() {
        assert!(
            COVERED.contains(&name.as_str()) || OWN_TESTS.contains(&name.as_str()),
            "scenario {name} has no test"
        );
    }
    for name in COVERED.iter().chain(OWN_TESTS) {
        fixture(name).unwrap();
    }
}

/// `get_nvlink_topology` through the built agent on the real NVML path.
#[tokio::test]
async fn topology_reads_the_fake_hgx_and_finds_p2p_disabled_on_its_gpu() {
    let mut s = Session::start(&fixture("healthy").unwrap()).await;
    let t = s.tool("get_nvlink_topology").await;
    assert_eq!(t["verdict"], "healthy", "{t}");
    assert_eq!(t["interconnect"], "nvswitch");
    let row0: Vec<&str> = t["matrix"][1]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row0,
        [
            "GPU0",
            "X",
            "NV18",
            "NV18",
            "NV18",
            "NV18",
            "NV18",
            "NV18",
            "NV18",
            "0-55,112-167",
            "0"
        ]
    );
    assert_eq!(t["gpus"][6]["fabric"]["state"], "completed");

    let mut s = Session::start(&fixture("p2p-disabled").unwrap()).await;
    let t = s.tool("get_nvlink_topology").await;
    assert_eq!(t["verdict"], "degraded", "{t}");
    let findings = t["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 7, "every pair with GPU 3: {t}");
    for f in findings {
        assert_eq!(f["check"], "p2p_nvlink");
        assert!(f["gpu"] == 3 || f["peer"] == 3, "{f}");
        assert!(f["observed"].as_str().unwrap().contains("DIS"), "{f}");
    }

    let mut s = Session::start(&fixture("fabric-not-started").unwrap()).await;
    let t = s.tool("get_nvlink_topology").await;
    assert_eq!(t["verdict"], "critical", "{t}");
    let row3: Vec<&str> = t["matrix"][4]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row3[1..9],
        ["NODE", "NODE", "NODE", "X", "SYS", "SYS", "SYS", "SYS"]
    );
}

#[tokio::test]
async fn inventory_lists_the_fake_gpus_with_driver_facts() {
    let mut s = Session::start(&fixture("healthy").unwrap()).await;
    let inv = s.tool("get_gpu_inventory").await;
    assert_eq!(inv["backend"], "nvml");
    assert_eq!(inv["gpu_count"], 8);
    assert_eq!(inv["driver_version"], "570.124.06");
    assert_eq!(inv["cuda_driver_version"], "12.8");
    let uuids: std::collections::HashSet<&str> = inv["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 8);
}

#[tokio::test]
async fn a_failed_device_count_is_a_tool_error_and_the_agent_keeps_serving() {
    let mut s = Session::start(&fixture("device-count-error").unwrap()).await;
    let r = s
        .request(
            "tools/call",
            json!({"name": "get_gpu_health", "arguments": {}}),
        )
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("nvmlDeviceGetCount"), "{text}");
    let again = s.request("tools/list", json!({})).await;
    assert!(again.get("result").is_some(), "{again}");
}

#[tokio::test]
async fn a_driver_that_is_not_loaded_stops_the_agent_with_one_sentence() {
    let fake = FakeNvml::install(&fixture("init-driver-not-loaded").unwrap()).unwrap();
    let out = common::agent(&[
        "--nvml-mode",
        "real",
        "--nvml-library-path",
        fake.library_path().to_str().unwrap(),
        "--log-format",
        "text",
    ])
    .stdin(Stdio::null())
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(out.stdout.is_empty(), "stdout carries only MCP messages");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("nvml") && err.contains("driver"), "{err}");
}

/// SXid lines in the kernel log of an NVSwitch system read through the real NVML path: listed
/// by `analyze_xid_errors` under `nvswitch`, judged once for the node by `get_gpu_health`, and,
/// asked about one GPU, on that GPU exactly when its NVLinks end at the failed switch.
#[tokio::test]
async fn sxids_in_the_kernel_log_are_judged_on_the_gpus_behind_their_switch() {
    use gpu_mcp_model::time::format_rfc3339;
    let ago =
        |mins: u64| format_rfc3339(std::time::SystemTime::now() - Duration::from_secs(mins * 60));
    let dir = std::env::temp_dir().join(format!("gpu-mcp-agent-sxid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kmsg = dir.join("kern.log");
    std::fs::write(
        &kmsg,
        format!(
            "{} hgx-1 kernel: nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 12028, Non-fatal, Link 3 egress non-posted PRIV error (First)\n\
             {} hgx-1 kernel: nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 24007, Fatal, Link 44 sourcetrack timeout error (First)\n",
            ago(20),
            ago(10)
        ),
    )
    .unwrap();
    let mut s = Session::start_with(
        &fixture("nvswitch-two-halves").unwrap(),
        &["--kmsg-path", kmsg.to_str().unwrap()],
    )
    .await;

    let x = s.tool("analyze_xid_errors").await;
    let n = &x["nvswitch"];
    assert_eq!(
        (n["total_events"].clone(), n["fatal_events"].clone()),
        (json!(2), json!(1)),
        "{x}"
    );
    let groups = n["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{n}");
    assert_eq!(groups[0]["sxid"], 24007, "newest first");
    assert_eq!(groups[0]["pci_bus_id"], "0000:05:00.0");
    assert_eq!(groups[0]["switch"], "nvidia-nvswitch0");
    assert_eq!(groups[0]["fatal"], true);
    assert_eq!(groups[0]["links"], json!([44]));
    assert_eq!(groups[1]["sxid"], 12028);
    assert_eq!(groups[1]["pci_bus_id"], "0000:06:00.0");
    assert_eq!(groups[1]["fatal"], false);
    assert_eq!(x["groups"], json!([]), "no Xid on any GPU: {x}");

    // Every GPU: one node-level finding for the fatal SXid (one non-fatal SXid is no finding),
    // and no GPU judged by it.
    let h = s.tool("get_gpu_health").await;
    assert_eq!(h["backend"], "nvml");
    assert_eq!(h["verdict"], "critical", "{h}");
    let f = h["node_findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["check"], "nvswitch_sxid");
    assert_eq!(f[0]["severity"], "critical");
    assert!(
        f[0]["summary"].as_str().unwrap().contains("0000:05:00.0"),
        "{f:?}"
    );
    for g in h["gpus"].as_array().unwrap() {
        assert_eq!(g["verdict"], "healthy", "GPU {}: {g}", g["index"]);
        assert_eq!(g["reasons"], json!([]), "GPU {}", g["index"]);
    }

    // One GPU: the finding is the GPU's behind 0000:05:00.0 (GPUs 0-3), beside it otherwise.
    for i in 0..8u32 {
        let h = s.tool_with("get_gpu_health", json!({"gpu_index": i})).await;
        let g = &h["gpus"][0];
        assert_eq!(g["index"], i);
        let reasons = g["reasons"].as_array().unwrap();
        let beside = h["node_findings"].as_array().unwrap();
        assert_eq!(h["verdict"], "critical", "GPU {i}: {h}");
        if i < 4 {
            assert_eq!(g["verdict"], "critical", "GPU {i}: {g}");
            assert_eq!(reasons.len(), 1, "GPU {i}: {g}");
            assert_eq!(reasons[0]["check"], "nvswitch_sxid");
            let said = reasons[0]["summary"].as_str().unwrap();
            assert!(
                said.contains(&format!("GPU {i}'s NVLinks go through it")),
                "{said}"
            );
            assert_eq!(beside, &Vec::<Value>::new(), "GPU {i}: {h}");
        } else {
            assert_eq!(g["verdict"], "healthy", "GPU {i}: {g}");
            assert_eq!(reasons, &Vec::<Value>::new(), "GPU {i}");
            assert_eq!(beside.len(), 1, "GPU {i}: {h}");
            let said = beside[0]["summary"].as_str().unwrap();
            assert!(
                said.contains(&format!("None of GPU {i}'s NVLinks goes through it")),
                "{said}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
