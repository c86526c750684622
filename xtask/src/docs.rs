//! `cargo xtask docs`.

/// Arguments of `cargo xtask docs`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask docs` is not available in this build")
}
