//! `cargo xtask chart`.

/// Arguments of `cargo xtask chart`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask chart` is not available in this build")
}
