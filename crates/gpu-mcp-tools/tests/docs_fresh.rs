#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `docs/tools.md` must match what the catalog generates (CI fails when it is stale).

#[tokio::test]
async fn tools_md_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/tools.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = gpu_mcp_tools::reference::tools_markdown().await.unwrap();
    assert!(
        committed == generated,
        "docs/tools.md is stale: run `cargo xtask docs` and commit the result"
    );
}
