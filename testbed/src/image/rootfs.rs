//! The runtime files of the image when the distroless base cannot be pulled: exactly the shared
//! objects the binaries load (as `ldd` resolves them on this machine), CA certificates, and the
//! `nonroot` user.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cmd, fs as files};

/// Where the host keeps the CA bundle (Debian's `ca-certificates`).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Fills `rootfs` with what `binaries` need at run time.
pub(super) fn assemble(rootfs: &Path, binaries: &[PathBuf]) -> Result<()> {
    let mut libraries = BTreeSet::new();
    for b in binaries {
        let out = cmd::output(Command::new("ldd").arg(b))
            .with_context(|| format!("listing the shared objects of {}", b.display()))?;
        libraries.extend(parse_ldd(&out)?);
    }
    for lib in &libraries {
        // The file itself, at the path the loader looks for (symlinks resolved).
        let dest = rootfs.join(lib.strip_prefix("/").unwrap_or(lib));
        files::create_dir(dest.parent().context("library path without a parent")?)?;
        std::fs::copy(lib, &dest).with_context(|| format!("copying {}", lib.display()))?;
    }
    let etc = rootfs.join("etc");
    files::write(
        &etc.join("passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )?;
    files::write(&etc.join("group"), "root:x:0:\nnonroot:x:65532:\n")?;
    if Path::new(CA_BUNDLE).exists() {
        let dest = rootfs.join(CA_BUNDLE.trim_start_matches('/'));
        files::create_dir(dest.parent().context("no parent")?)?;
        std::fs::copy(CA_BUNDLE, &dest).with_context(|| format!("copying {CA_BUNDLE}"))?;
    }
    for dir in ["tmp", "home/nonroot"] {
        files::create_dir(&rootfs.join(dir))?;
    }
    Ok(())
}

/// The absolute paths of the shared objects in `ldd` output (the loader included, vDSO not).
fn parse_ldd(text: &str) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.contains("not found") {
            bail!("a shared object is missing on this machine: {line}");
        }
        let path = match line.split_once("=>") {
            Some((_, resolved)) => resolved.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            found.insert(PathBuf::from(p));
        }
    }
    if found.is_empty() {
        bail!("ldd named no shared objects (a static binary needs no runtime base): {text}");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolved_objects_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
        let found: Vec<String> = parse_ldd(text)
            .unwrap()
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            found,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }

    #[test]
    fn a_missing_object_or_a_static_binary_is_an_error() {
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
        assert!(parse_ldd("\tstatically linked\n").is_err());
    }
}
