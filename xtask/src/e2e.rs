//! `cargo xtask e2e`.

/// Arguments of `cargo xtask e2e`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask e2e` is not available in this build")
}
