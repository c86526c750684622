//! `cargo xtask docs`: writes `docs/tools.md` from the agent's tool catalog
//! (`gpu_mcp_tools::reference`) and the gateway's definitions derived from it
//! (`gpu_mcp_fleet::gateway_tool_definitions`); `--check` fails when the committed file is stale,
//! and so does a test.

use anyhow::{Context, bail};
use gpu_mcp_testbed::util::workspace;

/// Arguments of `cargo xtask docs`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Do not write; fail when docs/tools.md differs from what would be generated.
    #[arg(long)]
    check: bool,
}

/// The contents of `docs/tools.md`.
async fn generate() -> anyhow::Result<String> {
    let gateway = gpu_mcp_fleet::gateway_tool_definitions(gpu_mcp_model::gpu_tool_definitions());
    Ok(gpu_mcp_tools::reference::tools_markdown(&gateway).await?)
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let generated = rt.block_on(generate())?;
    let path = workspace::workspace_root().join("docs/tools.md");
    if args.check {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != generated {
            bail!(
                "{} is stale: run `cargo xtask docs` and commit the result",
                path.display()
            );
        }
        println!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::write(&path, generated).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn tools_md_is_up_to_date() {
        let path = gpu_mcp_testbed::util::workspace::workspace_root().join("docs/tools.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = super::generate().await.unwrap_or_default();
        assert!(
            committed == generated,
            "docs/tools.md is stale: run `cargo xtask docs` and commit the result"
        );
    }
}
