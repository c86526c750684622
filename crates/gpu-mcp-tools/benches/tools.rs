//! Cost of one in-process call of each tool on the mock fleet with 8 GPUs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gpu_mcp_backend::{MockBackend, MockConfig, Scenario};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let backend = MockBackend::new(MockConfig {
        node_name: "bench-node".to_owned(),
        gpus: 8,
        scenario: Scenario::XidEccFamily,
        ..MockConfig::default()
    })
    .unwrap_or_else(|e| panic!("mock: {e}"));
    let catalog = AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "bench-node".to_owned(),
            ..AgentCatalogConfig::default()
        },
    );
    let mut g = c.benchmark_group("tool_call_mock_8_gpus");
    for tool in ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"] {
        g.bench_function(tool, |b| {
            b.iter(|| {
                let r = rt
                    .block_on(catalog.call(black_box(tool), None, CallContext::default()))
                    .unwrap_or_else(|e| panic!("{tool}: {e}"));
                assert!(r.is_error.is_none());
                r
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
