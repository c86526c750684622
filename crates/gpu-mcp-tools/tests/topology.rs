#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `get_nvlink_topology` through the agent's catalog over the mock fleet: the NVSwitch and
//! PCIe-only systems, the degraded-link and unfinished-fabric scenarios, GPU filters, `full`,
//! and the size of the default answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gpu_mcp_backend::{GpuModel, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn catalog(model: GpuModel, scenario: Scenario, affected: u32) -> AgentCatalog {
    let backend = MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 8,
        model,
        scenario,
        affected_gpu: affected,
        now: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        ..MockConfig::default()
    })
    .unwrap();
    AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            ..AgentCatalogConfig::default()
        },
    )
}

async fn call(c: &AgentCatalog, args: Value) -> CallToolResult {
    let Value::Object(o) = args else {
        panic!("bad test args")
    };
    let o: JsonObject = o;
    c.call("get_nvlink_topology", Some(o), CallContext::default())
        .await
        .unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    let v = r.structured_value().unwrap().into_owned();
    let def = gpu_tool_definitions()
        .into_iter()
        .find(|t| t.name == "get_nvlink_topology")
        .unwrap();
    let schema = Value::Object(def.output_schema.unwrap());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "output violates its schema: {errors:#?}");
    v
}

fn checks(v: &Value) -> Vec<(Option<u64>, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["gpu"].as_u64(),
                f["check"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_hgx_h100_is_nvswitch_with_nv18_between_every_pair_and_healthy() {
    let c = catalog(GpuModel::H100Hbm3_80gb, Scenario::Healthy, 0);
    let r = call(&c, json!({})).await;
    let v = ok(&r);
    assert_eq!(v["verdict"], "healthy", "{}", text(&r));
    assert_eq!(v["interconnect"], "nvswitch");
    assert!(v["findings"].as_array().unwrap().is_empty());
    let matrix: Vec<&str> = v["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(matrix.len(), 9);
    assert!(matrix[0].starts_with("      GPU0  GPU1"), "{}", matrix[0]);
    assert!(
        matrix[0].ends_with("CPU Affinity    NUMA Affinity"),
        "{}",
        matrix[0]
    );
    // Row 0: itself, then NV18 to the seven others, then the first socket's CPUs.
    let row0: Vec<&str> = matrix[1].split_whitespace().collect();
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
    assert!(matrix[8].ends_with("56-111,168-223  1"), "{}", matrix[8]);
    for row in &v["p2p"].as_array().unwrap()[1..] {
        let cells: Vec<&str> = row.as_str().unwrap().split_whitespace().skip(1).collect();
        assert!(cells.iter().all(|c| *c == "OK" || *c == "X"), "{row}");
    }
    let g = &v["gpus"][3];
    assert_eq!(g["numa_node"], 0);
    assert_eq!(g["nvlink"]["up"], 18);
    assert_eq!(g["nvlink"]["remote"], "NVSwitch");
    assert!(
        g["nvlink"].get("links").is_none(),
        "clean links are counted"
    );
    assert_eq!(g["fabric"]["state"], "completed");
    assert_eq!(g["fabric"]["clique_id"], 1);
    let headline = v["headline"].as_str().unwrap();
    assert!(headline.contains("NV18 between every pair"), "{headline}");
    assert!(
        headline.contains("fabric registered on 8 of 8 GPUs (clique 1)"),
        "{headline}"
    );
    // Well under 8 KB by default.
    let size = serde_json::to_vec(&v).unwrap().len();
    assert!(size < 6 * 1024, "default answer is {size} bytes");
    let t = text(&r);
    assert!(t.contains("GPU0  X     NV18  NV18"), "{t}");
    assert!(t.contains("Legend: X itself, NV# bonded NVLinks"), "{t}");
    assert!(!t.contains('{'), "the text is words, not JSON: {t}");
}

#[tokio::test]
async fn an_l4_server_is_pcie_only_pix_node_sys_without_fabric() {
    let c = catalog(GpuModel::L4, Scenario::Healthy, 0);
    let v = ok(&call(&c, json!({})).await);
    assert_eq!(v["verdict"], "healthy");
    assert_eq!(v["interconnect"], "pcie");
    let row0: Vec<&str> = v["matrix"][1]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row0,
        [
            "GPU0",
            "X",
            "PIX",
            "NODE",
            "NODE",
            "SYS",
            "SYS",
            "SYS",
            "SYS",
            "0-31,64-95",
            "0"
        ]
    );
    // Peer-to-peer works within a socket, not across (chipset not supported).
    let p2p0: Vec<&str> = v["p2p"][1].as_str().unwrap().split_whitespace().collect();
    assert_eq!(
        p2p0,
        ["GPU0", "X", "OK", "OK", "OK", "CNS", "CNS", "CNS", "CNS"]
    );
    for g in v["gpus"].as_array().unwrap() {
        assert!(g.get("nvlink").is_none());
        assert!(g.get("fabric").is_none());
    }
    assert!(
        v["headline"]
            .as_str()
            .unwrap()
            .contains("PCIe only (NODE/PIX/SYS)"),
        "{}",
        v["headline"]
    );
}

#[tokio::test]
async fn a_down_link_shows_as_nv17_on_that_gpus_pairs_with_the_link_listed() {
    let c = catalog(GpuModel::H100Hbm3_80gb, Scenario::NvlinkDegraded, 3);
    let r = call(&c, json!({})).await;
    let v = ok(&r);
    assert_eq!(v["verdict"], "degraded", "{}", text(&r));
    let found = checks(&v);
    assert!(
        found.contains(&(Some(3), "nvlink_down".into(), "degraded".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(Some(3), "nvlink_errors".into(), "warning".into())),
        "{found:?}"
    );
    assert!(found.iter().all(|(g, _, _)| *g == Some(3)), "{found:?}");
    let row3: Vec<&str> = v["matrix"][4]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row3[1..9],
        ["NV17", "NV17", "NV17", "X", "NV17", "NV17", "NV17", "NV17"]
    );
    let row0: Vec<&str> = v["matrix"][1]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row0[2], "NV18");
    assert_eq!(row0[4], "NV17");
    let links = &v["gpus"][3]["nvlink"];
    assert_eq!(links["up"], 17);
    assert_eq!(links["down"], 1);
    let listed: Vec<(u64, &str)> = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["link"].as_u64().unwrap(), l["state"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(3, "up"), (7, "down")]);
    assert_eq!(links["links"][1]["remote"], "NVSwitch 0000:06:00.0");
    assert!(links["links"][0]["new_errors"]["replay"].as_u64().unwrap() > 0);
    assert!(
        v["headline"].as_str().unwrap().contains("NV17 to NV18"),
        "{}",
        v["headline"]
    );
}

#[tokio::test]
async fn an_unfinished_fabric_is_found_on_the_right_gpu() {
    for (scenario, severity, state) in [
        (Scenario::FabricInProgress, "degraded", "in_progress"),
        (Scenario::FabricNotStarted, "critical", "not_started"),
    ] {
        let c = catalog(GpuModel::H100Hbm3_80gb, scenario, 5);
        let r = call(&c, json!({})).await;
        let v = ok(&r);
        assert_eq!(v["verdict"], severity, "{scenario}: {}", text(&r));
        let found = checks(&v);
        assert!(
            found.contains(&(Some(5), "fabric".into(), severity.into())),
            "{found:?}"
        );
        assert!(found.iter().all(|(g, _, _)| *g == Some(5)), "{found:?}");
        assert_eq!(v["gpus"][5]["fabric"]["state"], state);
        // Every link down: counted, not listed one by one.
        assert_eq!(v["gpus"][5]["nvlink"]["down"], 18);
        assert!(
            v["gpus"][5]["nvlink"].get("links").is_none(),
            "{}",
            v["gpus"][5]
        );
        let headline = v["headline"].as_str().unwrap();
        assert!(
            headline.contains("NV18 between 21 of 28 pairs"),
            "{headline}"
        );
        assert!(
            headline.contains("fabric registered on 7 of 8 GPUs (clique 1)"),
            "{headline}"
        );
        // Its links are not trained: GPU 5's pairs fall back to the PCIe path.
        let row5: Vec<&str> = v["matrix"][6]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            &row5[1..9],
            ["SYS", "SYS", "SYS", "SYS", "NODE", "X", "NODE", "NODE"]
        );
        assert!(text(&r).contains("nvidia-fabricmanager") || severity == "degraded");
    }
}

/// `nvidia-smi topo -m` on a DGX-1 with V100 (its hybrid cube mesh), GPU columns, then each
/// GPU's CPU affinity (two 20-core sockets with hyperthreads) and NUMA node.
const DGX1_TOPO_M: &str = "
      GPU0 GPU1 GPU2 GPU3 GPU4 GPU5 GPU6 GPU7
GPU0   X   NV1  NV1  NV2  NV2  SYS  SYS  SYS  0-19,40-59  0
GPU1  NV1   X   NV2  NV1  SYS  NV2  SYS  SYS  0-19,40-59  0
GPU2  NV1  NV2   X   NV2  SYS  SYS  NV1  SYS  0-19,40-59  0
GPU3  NV2  NV1  NV2   X   SYS  SYS  SYS  NV1  0-19,40-59  0
GPU4  NV2  SYS  SYS  SYS   X   NV1  NV1  NV2  20-39,60-79 1
GPU5  SYS  NV2  SYS  SYS  NV1   X   NV2  NV1  20-39,60-79 1
GPU6  SYS  SYS  NV1  SYS  NV1  NV2   X   NV2  20-39,60-79 1
GPU7  SYS  SYS  SYS  NV1  NV2  NV1  NV2   X   20-39,60-79 1
";

/// The words of each non-empty line, to compare matrices without their column widths.
fn words(lines: &[&str]) -> Vec<Vec<String>> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn a_v100_node_is_wired_as_a_dgx1_hybrid_cube_mesh() {
    let c = catalog(GpuModel::V100Sxm2_32gb, Scenario::Healthy, 0);
    let v = ok(&call(&c, json!({"full": true})).await);
    assert_eq!(v["interconnect"], "nvlink");
    assert_eq!(v["verdict"], "healthy", "{}", v["findings"]);
    let matrix: Vec<&str> = v["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let want = words(&DGX1_TOPO_M.lines().collect::<Vec<_>>());
    let got = words(&matrix);
    // The GPU columns as published, then the affinity columns.
    assert_eq!(got[0][..8], want[0][..], "{matrix:#?}");
    for (g, w) in got[1..].iter().zip(&want[1..]) {
        assert_eq!(g[..w.len()], w[..], "{matrix:#?}");
    }
    assert_eq!(got.len(), 9, "{matrix:#?}");
    // Six links per GPU, each to the GPU the mesh names.
    let remotes = [
        "GPU1 x1, GPU2 x1, GPU3 x2, GPU4 x2",
        "GPU0 x1, GPU2 x2, GPU3 x1, GPU5 x2",
        "GPU0 x1, GPU1 x2, GPU3 x2, GPU6 x1",
        "GPU0 x2, GPU1 x1, GPU2 x2, GPU7 x1",
        "GPU0 x2, GPU5 x1, GPU6 x1, GPU7 x2",
        "GPU1 x2, GPU4 x1, GPU6 x2, GPU7 x1",
        "GPU2 x1, GPU4 x1, GPU5 x2, GPU7 x2",
        "GPU3 x1, GPU4 x2, GPU5 x1, GPU6 x2",
    ];
    for (i, remote) in remotes.iter().enumerate() {
        let gpu = &v["gpus"][i];
        assert_eq!(gpu["nvlink"]["remote"], *remote, "GPU{i}");
        assert_eq!(
            gpu["nvlink"]["links"].as_array().unwrap().len(),
            6,
            "GPU{i}"
        );
        assert_eq!(gpu["numa_node"], i / 4, "GPU{i}: {gpu}");
    }
    // The pairs without NVLink cross the sockets: no peer-to-peer over the chipset.
    let p2p = words(
        &v["p2p"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect::<Vec<_>>(),
    );
    for (a, row) in want[1..].iter().enumerate() {
        for (b, cell) in row[1..9].iter().enumerate() {
            let expected = match cell.as_str() {
                "X" => "X",
                "SYS" => "CNS",
                _ => "OK",
            };
            assert_eq!(p2p[a + 1][b + 1], expected, "GPU{a}-GPU{b}: {p2p:?}");
        }
    }
    assert_eq!(v["pairs"].as_array().unwrap().len(), 28);
}

#[tokio::test]
async fn a_filter_keeps_the_matrix_and_narrows_facts_and_findings() {
    let c = catalog(GpuModel::H100Hbm3_80gb, Scenario::NvlinkDegraded, 3);
    let v = ok(&call(&c, json!({"gpu_index": 2})).await);
    assert_eq!(v["verdict"], "healthy");
    assert_eq!(v["gpus"].as_array().unwrap().len(), 1);
    assert_eq!(v["gpus"][0]["index"], 2);
    assert_eq!(v["matrix"].as_array().unwrap().len(), 9);
    let bad = call(&c, json!({"gpu_index": 9})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("gpu_index"), "{}", text(&bad));
    let bad = call(&c, json!({"links": true})).await;
    assert_eq!(bad.is_error, Some(true));
}

#[tokio::test]
async fn a_gpu_that_cannot_be_read_is_never_a_healthy_topology() {
    for scenario in [Scenario::Xid79, Scenario::GspTimeout] {
        let c = catalog(GpuModel::H100Hbm3_80gb, scenario, 2);
        let v = ok(&call(&c, json!({})).await);
        assert_eq!(v["verdict"], "critical", "{scenario}: {v}");
        let found = checks(&v);
        assert!(
            found.contains(&(Some(2), "gpu_access".into(), "critical".into())),
            "{scenario}: {found:?}"
        );
        // Its pairs cannot be told: `?` rather than a guess.
        let row0: Vec<&str> = v["matrix"][1]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(row0[3], "?", "{scenario}: {row0:?}");
        assert_eq!(row0[2], "NV18", "{scenario}: {row0:?}");
        assert!(
            v["gpus"][2]["unavailable"]
                .as_object()
                .is_some_and(|u| !u.is_empty())
        );
    }
}
