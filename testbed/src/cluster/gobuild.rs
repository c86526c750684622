//! Builds the control-plane binaries from the Go wrapper modules in `testbed/k8s-bins/`.
//!
//! Each wrapper module pins one upstream release and lists the upstream `main` packages as
//! `tool` directives, so `go build` compiles exactly upstream's commands with the module graph
//! recorded in the committed `go.sum`.
//! Outputs are cached per module in `<cache>/k8s-bins/<name>-<version>-<hash>/`, where the hash
//! covers `go.mod`, `go.sum` and the link flags: editing a wrapper module rebuilds it, anything
//! else reuses the cached binaries.
//! Go's own caches (`GOMODCACHE`, `GOCACHE`) keep their defaults, so a rebuild after a version
//! bump reuses every unchanged package.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::util::cache::{PidLock, cache_root, fnv1a};
use crate::util::{cmd, fs as files};

/// One upstream command built from a wrapper module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// Go import path of the `main` package.
    pub(crate) package: &'static str,
    /// File name of the built binary.
    pub(crate) binary: &'static str,
}

/// A wrapper module under `testbed/k8s-bins/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GoModule {
    /// Directory name under `testbed/k8s-bins/`, also the cache key prefix.
    pub(crate) name: &'static str,
    /// Upstream release the module pins (must match its `go.mod`).
    pub(crate) version: &'static str,
    /// Commands to build.
    pub(crate) tools: &'static [Tool],
    /// Extra `-ldflags` (always combined with `-s -w`).
    pub(crate) ldflags: &'static str,
    /// Upstream source files replaced at build time (`go build -overlay`): the upstream
    /// module (`path@version`) and the file's path in it; the replacement lives at
    /// `testbed/k8s-bins/<name>/_overlay/<file>` (Go ignores `_`-prefixed directories).
    pub(crate) overlays: &'static [(&'static str, &'static str)],
    /// The module's own source files (a `main` package of the wrapper module itself), hashed
    /// with `go.mod` and `go.sum`.
    pub(crate) sources: &'static [&'static str],
    /// Rough cold-build time on two shared cores, shown while building.
    pub(crate) cold_estimate: &'static str,
}

/// kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from `k8s.io/kubernetes`.
pub(crate) const KUBERNETES: GoModule = GoModule {
    name: "kubernetes",
    version: "v1.36.3",
    tools: &[
        Tool {
            package: "k8s.io/kubernetes/cmd/kube-apiserver",
            binary: "kube-apiserver",
        },
        Tool {
            package: "k8s.io/kubernetes/cmd/kube-controller-manager",
            binary: "kube-controller-manager",
        },
        Tool {
            package: "k8s.io/kubernetes/cmd/kube-scheduler",
            binary: "kube-scheduler",
        },
        Tool {
            package: "k8s.io/kubernetes/cmd/kubectl",
            binary: "kubectl",
        },
    ],
    ldflags: "-X k8s.io/component-base/version.gitVersion=v1.36.3 \
              -X k8s.io/component-base/version.gitMajor=1 \
              -X k8s.io/component-base/version.gitMinor=36 \
              -X k8s.io/component-base/version.gitTreeState=clean",
    overlays: &[],
    sources: &[],
    cold_estimate: "9-15 min",
};

/// etcd from `go.etcd.io/etcd/server/v3`.
pub(crate) const ETCD: GoModule = GoModule {
    name: "etcd",
    version: "v3.6.16",
    tools: &[Tool {
        package: "go.etcd.io/etcd/server/v3",
        binary: "etcd",
    }],
    ldflags: "",
    overlays: &[],
    sources: &[],
    cold_estimate: "1-3 min",
};

/// The kwok controller from `sigs.k8s.io/kwok`.
pub(crate) const KWOK: GoModule = GoModule {
    name: "kwok",
    version: "v0.8.0",
    tools: &[Tool {
        package: "sigs.k8s.io/kwok/cmd/kwok",
        binary: "kwok",
    }],
    ldflags: "",
    // kwok v0.8.0 never closes an exec'd command's stdin, so a command reading to the end of
    // its input (the agent's stdio mode) never exits; the overlay closes it as kubelets do.
    overlays: &[("sigs.k8s.io/kwok@v0.8.0", "pkg/utils/exec/exec.go")],
    sources: &[],
    cold_estimate: "2-4 min",
};

/// helm from `helm.sh/helm/v3`.
pub(crate) const HELM: GoModule = GoModule {
    name: "helm",
    version: "v3.21.4",
    tools: &[Tool {
        package: "helm.sh/helm/v3/cmd/helm",
        binary: "helm",
    }],
    ldflags: "-X helm.sh/helm/v3/internal/version.version=v3.21.4",
    overlays: &[],
    sources: &[],
    cold_estimate: "2-4 min",
};

/// Every module `cargo xtask cluster up` needs.
pub(crate) const ALL: [GoModule; 4] = [ETCD, KUBERNETES, KWOK, HELM];

/// The kubelet of the real node, from the same `k8s.io/kubernetes` release as [`KUBERNETES`]
/// (its own wrapper module, so the control plane's cached build stays valid; a test keeps the
/// two modules' `k8s.io` pins identical).
pub(crate) const KUBELET: GoModule = GoModule {
    name: "kubelet",
    version: KUBERNETES.version,
    tools: &[Tool {
        package: "k8s.io/kubernetes/cmd/kubelet",
        binary: "kubelet",
    }],
    ldflags: KUBERNETES.ldflags,
    overlays: &[],
    sources: &[],
    cold_estimate: "3-6 min",
};

/// The CNI plugins the real node's pod network uses.
pub(crate) const CNI_PLUGINS: GoModule = GoModule {
    name: "cni-plugins",
    version: "v1.9.1",
    tools: &[
        Tool {
            package: "github.com/containernetworking/plugins/plugins/main/ptp",
            binary: "ptp",
        },
        Tool {
            package: "github.com/containernetworking/plugins/plugins/ipam/host-local",
            binary: "host-local",
        },
        Tool {
            package: "github.com/containernetworking/plugins/plugins/main/loopback",
            binary: "loopback",
        },
    ],
    ldflags: "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v1.9.1",
    overlays: &[],
    sources: &[],
    cold_estimate: "1-2 min",
};

/// The pause program of the real node's pod sandboxes (the wrapper module's own `main`).
pub(crate) const PAUSE: GoModule = GoModule {
    name: "pause",
    version: "v1",
    tools: &[Tool {
        package: "gpu-mcp.local/k8s-bins/pause",
        binary: "pause",
    }],
    ldflags: "",
    overlays: &[],
    sources: &["main.go"],
    cold_estimate: "0-1 min",
};

/// The modules only the real node (`cluster up --real-node`) needs.
pub(crate) const REAL_NODE: [GoModule; 3] = [KUBELET, CNI_PLUGINS, PAUSE];

/// Minimum Go release the wrapper modules declare (`go 1.26.0`).
const MIN_GO: (u32, u32) = (1, 26);

/// Directory of the wrapper module in the source tree.
pub(super) fn module_dir(module: &GoModule) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("k8s-bins")
        .join(module.name)
}

/// The project's replacement for upstream file `file` of a module.
fn overlay_file(module: &GoModule, file: &str) -> PathBuf {
    module_dir(module).join("_overlay").join(file)
}

/// Prepares a vendored copy of the module in `work` with the project's replacements in place
/// (Go refuses `-overlay` for files in the module cache, and a vendor tree is ours to edit).
fn vendor_with_overlays(module: &GoModule, work: &Path, log: &File) -> anyhow::Result<()> {
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    for name in ["go.mod", "go.sum"] {
        fs::copy(module_dir(module).join(name), work.join(name))
            .with_context(|| format!("copying {name} to {}", work.display()))?;
    }
    cmd::status(go_command(work, "-mod=readonly", log)?.args(["mod", "vendor"]))?;
    for (upstream, file) in module.overlays {
        let path = upstream.split('@').next().unwrap_or(upstream);
        let target = work.join("vendor").join(path).join(file);
        if !target.is_file() {
            bail!(
                "{} is not in the vendor tree of {}",
                target.display(),
                module.name
            );
        }
        fs::copy(overlay_file(module, file), &target)
            .with_context(|| format!("replacing {}", target.display()))?;
    }
    Ok(())
}

/// `go` (under `nice` when available) in `dir`, with the build environment and output to `log`.
fn go_command(dir: &Path, mod_flag: &str, log: &File) -> anyhow::Result<Command> {
    let mut command = if Path::new("/usr/bin/nice").exists() {
        let mut c = Command::new("/usr/bin/nice");
        c.args(["-n", "10", "go"]);
        c
    } else {
        Command::new("go")
    };
    command
        .current_dir(dir)
        .env("CGO_ENABLED", "0")
        // No DWARF in the compiled packages: `-s -w` drops it from the binaries anyway, and
        // without it `GOCACHE` holds about a quarter less.
        .env(
            "GOFLAGS",
            format!("-trimpath -buildvcs=false -gcflags=all=-dwarf=false {mod_flag}"),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cloning the log handle")?)
        .stderr(log.try_clone().context("cloning the log handle")?);
    if std::env::var_os("GOTOOLCHAIN").is_none() {
        command.env("GOTOOLCHAIN", "local");
    }
    Ok(command)
}

/// Full `-ldflags` value for a module.
fn ldflags(module: &GoModule) -> String {
    let extra = module
        .ldflags
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if extra.is_empty() {
        "-s -w".to_owned()
    } else {
        format!("-s -w {extra}")
    }
}

/// The cache directory that holds (or will hold) a module's binaries.
pub(crate) fn output_dir(module: &GoModule) -> anyhow::Result<PathBuf> {
    let dir = module_dir(module);
    let go_mod = fs::read(dir.join("go.mod"))
        .with_context(|| format!("reading {}", dir.join("go.mod").display()))?;
    let go_sum = fs::read(dir.join("go.sum"))
        .with_context(|| format!("reading {}", dir.join("go.sum").display()))?;
    let flags = ldflags(module);
    let mut chunks: Vec<Vec<u8>> = vec![go_mod, go_sum, flags.into_bytes()];
    for (_, file) in module.overlays {
        let path = overlay_file(module, file);
        chunks.push(fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    for file in module.sources {
        let path = dir.join(file);
        chunks.push(fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let hash = fnv1a(&refs);
    Ok(cache_root()?.join("k8s-bins").join(format!(
        "{}-{}-{:08x}",
        module.name,
        module.version,
        hash >> 32
    )))
}

/// Path of one built binary, building the module first when the cache lacks it.
pub(crate) fn binary(module: &GoModule, name: &str) -> anyhow::Result<PathBuf> {
    let dir = ensure(module)?;
    Ok(dir.join(name))
}

fn is_complete(dir: &Path, module: &GoModule) -> bool {
    module.tools.iter().all(|t| dir.join(t.binary).is_file())
}

/// Builds a module unless its binaries are cached; returns the directory holding them.
pub(crate) fn ensure(module: &GoModule) -> anyhow::Result<PathBuf> {
    let out = output_dir(module)?;
    if is_complete(&out, module) {
        return Ok(out);
    }
    let parent = out
        .parent()
        .context("cache directory has no parent")?
        .to_path_buf();
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let _lock = PidLock::acquire(
        &sibling(&out, "lock"),
        &format!("another build of {}", module.name),
    )?;
    // Another process may have finished the same build while we waited for the lock.
    if is_complete(&out, module) {
        return Ok(out);
    }
    build(module, &out)?;
    Ok(out)
}

/// `<dir>.<suffix>` beside `dir` (`Path::with_extension` would cut a dotted version).
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

/// Checks that a usable Go toolchain is on PATH; returns its version string.
pub(crate) fn check_go() -> anyhow::Result<String> {
    let missing = || {
        format!(
            "the local cluster builds etcd, kube-apiserver, kwok, helm and kubectl from source and needs \
             the Go toolchain: install Go {}.{} or newer so that `go` is on PATH (for example \
             /usr/local/go/bin), with the Go module proxy reachable (GOPROXY)",
            MIN_GO.0, MIN_GO.1
        )
    };
    let output = match cmd::run(Command::new("go").args(["env", "GOVERSION"])) {
        Ok(output) => output,
        Err(err) if cmd::is_not_found(&err) => bail!("{}", missing()),
        Err(err) => bail!("{err:#}\n{}", missing()),
    };
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match parse_go_version(&version) {
        Some(found) if found >= MIN_GO => Ok(version),
        // A user-selected toolchain (GOTOOLCHAIN) may still fetch a newer Go through the proxy.
        Some(_) if std::env::var_os("GOTOOLCHAIN").is_some() => Ok(version),
        _ => bail!("found Go `{version}`; {}", missing()),
    }
}

/// Parses `go1.26.8` (or `go1.26rc1`) into `(1, 26)`.
fn parse_go_version(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("go")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// Number of parallel Go build jobs: `$GPU_MCP_GO_JOBS`, default 2.
fn go_jobs() -> String {
    std::env::var("GPU_MCP_GO_JOBS")
        .ok()
        .filter(|v| v.parse::<u32>().is_ok_and(|n| n > 0))
        .unwrap_or_else(|| "2".to_owned())
}

fn build(module: &GoModule, out: &Path) -> anyhow::Result<()> {
    check_go()?;
    let logs = out
        .parent()
        .context("cache directory has no parent")?
        .join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log_path = logs.join(format!("{}-{}.log", module.name, module.version));
    let staging = sibling(out, &format!("tmp-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;

    let binaries: Vec<&str> = module.tools.iter().map(|t| t.binary).collect();
    eprintln!(
        "building {} {} with Go (cold: about {} on two shared cores; cached afterwards)\n  log: {}",
        binaries.join(", "),
        module.version,
        module.cold_estimate,
        log_path.display()
    );
    let started = Instant::now();
    let mut log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let flags = ldflags(module);
    let packages: Vec<&str> = module.tools.iter().map(|t| t.package).collect();
    let mut args: Vec<String> = vec![
        "build".into(),
        "-p".into(),
        go_jobs(),
        "-o".into(),
        // One package: name the binary (`go build` would call etcd's `server`); several: a
        // directory, where each binary takes its package's last path element.
        match module.tools {
            [only] => staging.join(only.binary).display().to_string(),
            _ => format!("{}/", staging.display()),
        },
        "-ldflags".into(),
        flags,
    ];
    args.extend(packages.iter().map(|p| (*p).to_owned()));

    // Modules with replaced upstream files build from a vendored copy; the others in place.
    let (dir, mod_flag) = if module.overlays.is_empty() {
        (module_dir(module), "-mod=readonly")
    } else {
        let work = staging.join("src");
        writeln!(
            log,
            "# vendoring {} with the files in _overlay/",
            module.name
        )
        .context("writing the build log")?;
        if let Err(err) = vendor_with_overlays(module, &work, &log) {
            let _ = fs::remove_dir_all(&staging);
            bail!(
                "preparing {} failed: {err:#}; see the build log: {}\n{}",
                module.name,
                log_path.display(),
                files::quote_lines(&files::tail(&log_path, 15))
            );
        }
        (work, "-mod=vendor")
    };
    writeln!(log, "# in {}: go {}", dir.display(), args.join(" "))
        .context("writing the build log")?;
    let status = go_command(&dir, mod_flag, &log)?
        .args(&args)
        .status()
        .with_context(|| format!("starting `go build` for {}", module.name))?;
    if !status.success() {
        let _ = fs::remove_dir_all(&staging);
        bail!(
            "building {} {} failed ({status}); see the build log: {}\n{}",
            module.name,
            module.version,
            log_path.display(),
            files::quote_lines(&files::tail(&log_path, 15))
        );
    }
    for tool in module.tools {
        if !staging.join(tool.binary).is_file() {
            let _ = fs::remove_dir_all(&staging);
            bail!(
                "`go build` succeeded but produced no {}; see {}",
                tool.binary,
                log_path.display()
            );
        }
    }
    let _ = fs::remove_dir_all(staging.join("src"));
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("removing stale {}", out.display()))?;
    }
    fs::rename(&staging, out)
        .with_context(|| format!("moving {} to {}", staging.display(), out.display()))?;
    prune_superseded(module, out);
    let secs = started.elapsed().as_secs();
    writeln!(log, "# built in {secs} s").context("writing the build log")?;
    eprintln!(
        "built {} in {} min {} s",
        binaries.join(", "),
        secs / 60,
        secs % 60
    );
    Ok(())
}

/// Removes this module's cached builds from earlier `go.mod`/`go.sum`/flag states.
fn prune_superseded(module: &GoModule, current: &Path) {
    let (Some(parent), Some(keep)) = (current.parent(), current.file_name()) else {
        return;
    };
    let prefix = format!("{}-{}-", module.name, module.version);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        let hash = text.strip_prefix(&prefix).unwrap_or_default();
        if name != keep && hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_keep_dotted_versions() {
        assert_eq!(
            sibling(Path::new("/c/etcd-v3.6.16-abc"), "lock"),
            Path::new("/c/etcd-v3.6.16-abc.lock")
        );
    }

    #[test]
    fn parses_go_versions() {
        assert_eq!(parse_go_version("go1.26.8"), Some((1, 26)));
        assert_eq!(parse_go_version("go1.27rc1"), Some((1, 27)));
        assert_eq!(parse_go_version("devel +abc"), None);
    }

    #[test]
    fn every_module_dir_pins_its_version_and_tools() {
        for module in ALL.into_iter().chain(REAL_NODE) {
            let go_mod = fs::read_to_string(module_dir(&module).join("go.mod")).unwrap();
            for tool in module.tools {
                assert!(
                    go_mod.contains(&format!("tool {}", tool.package))
                        || go_mod.contains(&format!("\t{}\n", tool.package))
                        || go_mod.contains(&format!("module {}\n", tool.package)),
                    "{} lacks tool {}",
                    module.name,
                    tool.package
                );
            }
            for (upstream, file) in module.overlays {
                assert!(overlay_file(&module, file).is_file(), "{upstream} {file}");
                assert!(upstream.ends_with(module.version), "{upstream}");
            }
            for file in module.sources {
                assert!(module_dir(&module).join(file).is_file(), "{file}");
            }
            // A module of its own sources pins no upstream release.
            assert!(
                !module.sources.is_empty() || go_mod.contains(module.version),
                "{} go.mod does not pin {}",
                module.name,
                module.version
            );
        }
    }

    /// The `replace (...)` block and the `k8s.io/kubernetes` requirement of a go.mod.
    fn kubernetes_pins(module: &GoModule) -> (String, String) {
        let go_mod = fs::read_to_string(module_dir(module).join("go.mod")).unwrap();
        let start = go_mod.find("replace (").unwrap();
        let end = start + go_mod[start..].find(')').unwrap();
        let require = go_mod
            .lines()
            .find(|l| l.trim_start().starts_with("k8s.io/kubernetes "))
            .unwrap()
            .trim()
            .trim_end_matches("// indirect")
            .trim()
            .to_owned();
        (go_mod[start..end].to_owned(), require)
    }

    #[test]
    fn the_kubelet_is_built_from_the_control_planes_kubernetes_release() {
        let (control_plane_replace, control_plane) = kubernetes_pins(&KUBERNETES);
        let (kubelet_replace, kubelet) = kubernetes_pins(&KUBELET);
        assert_eq!(
            control_plane,
            format!("k8s.io/kubernetes {}", KUBERNETES.version)
        );
        assert_eq!(kubelet, control_plane);
        assert_eq!(kubelet_replace, control_plane_replace);
        assert_eq!(KUBELET.ldflags, KUBERNETES.ldflags);
    }
}
