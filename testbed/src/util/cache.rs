//! The project's user cache and turns taken on it: where built tools and installed clients are
//! kept between runs, the content hash that keys them, and a pid lock file so concurrent
//! `cargo xtask` runs build or install each thing once.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// Root of this project's user cache: `$GPU_MCP_CACHE_DIR`, `$XDG_CACHE_HOME/gpu-mcp` or
/// `$HOME/.cache/gpu-mcp`.
pub fn cache_root() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("GPU_MCP_CACHE_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("gpu-mcp"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("gpu-mcp")),
        None => {
            bail!("cannot find a cache directory: set GPU_MCP_CACHE_DIR, XDG_CACHE_HOME or HOME")
        }
    }
}

/// 64-bit FNV-1a: a stable content hash for cache keys (not for security).
pub fn fnv1a(chunks: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for byte in *chunk {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate chunks so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A lock file holding its owner's pid, so concurrent `cargo xtask` runs take turns (one builds a
/// module or installs the SDK clients, one starts or stops a cluster); a lock whose owner died is
/// taken over.
#[derive(Debug)]
pub struct PidLock {
    path: PathBuf,
}

impl PidLock {
    /// Takes the lock at `path`, waiting (and saying so once) while `holder_is` holds it.
    pub fn acquire(path: &Path, holder_is: &str) -> anyhow::Result<Self> {
        let mut announced = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id())
                        .with_context(|| format!("writing {}", path.display()))?;
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                            if !announced {
                                eprintln!("waiting for {holder_is} (pid {pid}) to finish");
                                announced = true;
                            }
                            std::thread::sleep(Duration::from_secs(2));
                        }
                        // The holder died (or the file is half-written and old): take over.
                        _ => {
                            let fresh = fs::metadata(path)
                                .and_then(|m| m.modified())
                                .ok()
                                .and_then(|t| t.elapsed().ok())
                                .is_some_and(|age| age < Duration::from_secs(2));
                            if fresh {
                                std::thread::sleep(Duration::from_millis(200));
                            } else {
                                let _ = fs::remove_file(path);
                            }
                        }
                    }
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", path.display()));
                }
            }
        }
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_chunk_and_its_boundaries() {
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_ne!(fnv1a(&[b"go.mod"]), fnv1a(&[b"go.mod", b""]));
        assert_eq!(fnv1a(&[b"x"]), fnv1a(&[b"x"]));
    }

    #[test]
    fn a_lock_is_released_on_drop_and_taken_over_from_a_dead_owner() {
        let path = std::env::temp_dir().join(format!("gpu-mcp-lock-test-{}", std::process::id()));
        let _ = fs::remove_file(&path);
        let lock = PidLock::acquire(&path, "test").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!path.exists());

        // A lock file left by a process that no longer exists (pid beyond pid_max).
        fs::write(&path, "4294967295").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let lock = PidLock::acquire(&path, "test").unwrap();
        drop(lock);
        assert!(!path.exists());
    }
}
