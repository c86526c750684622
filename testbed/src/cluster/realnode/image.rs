//! The pause image, written here as a `docker save` archive (no registry, no Docker engine),
//! and importing archives into the real node's containerd (`ctr -n k8s.io images import`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::config::PAUSE_IMAGE;
use crate::util::{cmd, fs as files};

/// `sha256sum` of a file, as hex.
fn sha256(path: &Path) -> anyhow::Result<String> {
    let out = cmd::output(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_owned)
        .with_context(|| format!("sha256sum printed no digest for {}", path.display()))
}

/// Writes `<dir>/pause.tar`, an image of one layer holding `pause` (a static binary) as
/// `/pause`, run as 65535 like upstream's pause image; returns the archive's path.
pub(crate) fn pause_archive(pause: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let work = dir.join("pause-image");
    let rootfs = work.join("rootfs");
    files::create_dir(&rootfs)?;
    fs::copy(pause, rootfs.join("pause"))
        .with_context(|| format!("copying {}", pause.display()))?;
    let layer = work.join("layer.tar");
    cmd::run(
        Command::new("tar")
            .args([
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@0",
                "-C",
            ])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&layer)
            .arg("pause"),
    )?;
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": { "Entrypoint": ["/pause"], "User": "65535:65535" },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256(&layer)?)] },
    });
    let config_tmp = work.join("config.json");
    files::write(&config_tmp, serde_json::to_vec(&config)?)?;
    let config_name = format!("{}.json", sha256(&config_tmp)?);
    fs::rename(&config_tmp, work.join(&config_name)).context("naming the image config")?;
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [PAUSE_IMAGE],
        "Layers": ["layer.tar"],
    }]);
    files::write(&work.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
    let archive = dir.join("pause.tar");
    cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-cf")
            .arg(&archive)
            .args(["manifest.json", &config_name, "layer.tar"]),
    )?;
    let _ = fs::remove_dir_all(&work);
    Ok(archive)
}

/// Imports an image archive into the `k8s.io` namespace of the containerd at `socket` (where
/// the kubelet's CRI finds images).
pub(crate) fn import(ctr: &Path, socket: &Path, archive: &Path) -> anyhow::Result<()> {
    cmd::run(
        Command::new(ctr)
            .arg("--address")
            .arg(socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive),
    )
    .with_context(|| format!("importing {} into the real node", archive.display()))?;
    Ok(())
}
