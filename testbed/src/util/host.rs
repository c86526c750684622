//! This machine's programs and packages: finding a program, whether this is a root shell, and
//! installing the distribution's packages with `apt-get` when the test bed needs them.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use super::cmd;

/// `program` on `PATH`, or in `/usr/sbin` and `/usr/bin` (root's tools are often in `sbin`).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() == "0")
}

/// Installs the distribution's `packages` with `apt-get` (as root on Debian and its
/// derivatives); `what` names what needs them in the error otherwise.
pub fn apt_install(packages: &[&str], what: &str) -> Result<()> {
    if !is_root() || which("apt-get").is_none() {
        bail!(
            "{what} needs the packages {} and this is not a root shell with apt-get to install \
             them in: install them (Debian: `apt-get install {}`)",
            packages.join(", "),
            packages.join(" ")
        );
    }
    eprintln!(
        "installing {} from the distribution (apt-get install)",
        packages.join(", ")
    );
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages),
    )?;
    Ok(())
}
