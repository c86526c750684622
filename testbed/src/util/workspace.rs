//! The Cargo workspace: where it is, where its builds go, and building its binaries.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cmd;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The target directory: `$CARGO_TARGET_DIR` (relative to the workspace root when relative),
/// else `<root>/target`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// `<target>/xtask/<what>`: scratch space for logs, renders and tool installs.
pub fn scratch_dir(what: &str) -> PathBuf {
    target_dir().join("xtask").join(what)
}

/// The workspace's binaries in one build profile.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root.
    pub root: PathBuf,
    /// `release` or `debug`.
    pub profile: &'static str,
}

impl Workspace {
    /// The release profile when `release`, else debug.
    pub fn new(release: bool) -> Self {
        Self {
            root: workspace_root(),
            profile: if release { "release" } else { "debug" },
        }
    }

    /// `target/<profile>/<name>`, honouring `CARGO_TARGET_DIR`.
    pub fn binary(&self, name: &str) -> PathBuf {
        target_dir().join(self.profile).join(name)
    }

    /// Builds the given packages' binaries in this profile.
    ///
    /// In the debug profile that is `cargo test --workspace --locked --no-run`, the very build
    /// `cargo test --workspace` makes: its binaries are the ones the integration tests ran
    /// (`CARGO_BIN_EXE_*`, uplifted to `target/debug/`), and after that stage it is a no-op.
    /// A `cargo build -p …` would compile nearly the whole graph a second time, since the tests'
    /// dev-dependencies turn on features (tokio's `test-util`) and a package selection changes
    /// which features are unified. In the release profile it is `cargo build --release -p …`.
    pub fn build(&self, packages: &[&str]) -> Result<()> {
        let mut cargo = cmd::cargo();
        cargo.current_dir(&self.root);
        if self.profile == "release" {
            cargo.args(["build", "--release", "--locked"]);
            for p in packages {
                cargo.args(["-p", p]);
            }
        } else {
            cargo.args(["test", "--workspace", "--locked", "--no-run"]);
        }
        eprintln!("building {} ({})", packages.join(", "), self.profile);
        cmd::status(&mut cargo)?;
        for bin in packages {
            let path = self.binary(bin);
            anyhow::ensure!(
                path.is_file(),
                "the build left no {}: is `{bin}` a binary package?",
                path.display()
            );
        }
        Ok(())
    }

    /// A scratch directory for logs under the target directory.
    pub fn scratch(&self, what: &str) -> PathBuf {
        scratch_dir(what)
    }
}
