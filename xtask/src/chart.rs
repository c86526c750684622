//! `cargo xtask chart`: lint, render and check the Helm chart with a real Helm.
//!
//! For every value file in `charts/k8s-gpu-mcp-server/ci/` (Helm's convention for CI values):
//!
//! 1. `helm lint --strict` and `helm template`;
//! 2. every rendered manifest is validated against the Kubernetes OpenAPI schemas with unknown
//!    fields rejected (`kubernetes-validate --strict`, installed by this command into a virtual
//!    environment under `target/`), for the oldest and the newest Kubernetes the chart supports;
//! 3. policy checks ([`policy`]): no privileged pod, exact RBAC, probes and resources, labels that
//!    the gateway's selector matches, least-privilege security contexts;
//! 4. the render is compared with its snapshot in `charts/k8s-gpu-mcp-server/tests/snapshots/`
//!    (`--bless` rewrites them).
//!
//! Then the contract with the agent binary ([`contract`]): the rendered container starts a ready
//! agent, and the gateway's exec command answers with the agent container's environment.
//!
//! And the negative cases: each file in `tests/bad-values/` must be refused by
//! `values.schema.json` with a message naming the offending key, a manifest with an unknown field
//! must be refused by the validator, and an opted-in privileged agent must be refused by the policy.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

mod contract;
mod policy;

/// Chart directory, relative to the workspace root.
pub(crate) const CHART_DIR: &str = "charts/k8s-gpu-mcp-server";
/// Release name used for renders, snapshots and the documented install.
pub(crate) const RELEASE: &str = "k8s-gpu-mcp-server";
/// Namespace used for renders, snapshots and the documented install.
pub(crate) const NAMESPACE: &str = "gpu-diagnostics";
/// Kubernetes version Helm renders for (its `.Capabilities`), within the chart's `kubeVersion`.
const RENDER_KUBE_VERSION: &str = "1.34.0";
/// Kubernetes versions whose schemas every manifest must satisfy: the oldest the chart supports
/// and the newest the validator knows.
const SCHEMA_KUBE_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];
/// Pinned validator release (its schemas cover Kubernetes 1.25 to 1.37).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// Kinds from CRDs that the validator has no schema for; [`policy`] checks their fields.
const CRD_KINDS: &[&str] = &["ServiceMonitor"];

/// Arguments of `cargo xtask chart`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rewrite the snapshots in charts/k8s-gpu-mcp-server/tests/snapshots/ from this render.
    #[arg(long)]
    bless: bool,
    /// Helm binary to use (default: $HELM, then the local-cluster build, then `helm` on PATH).
    #[arg(long, value_name = "PATH")]
    helm: Option<PathBuf>,
    /// Agent binary for the contract check (default: `cargo build -p gpu-mcp-agent`, then
    /// target/debug/gpu-mcp-agent).
    #[arg(long, value_name = "PATH")]
    agent_bin: Option<PathBuf>,
    /// Python 3 used to create the validator's virtual environment.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let chart = root.join(CHART_DIR);
    let work = target_dir(&root).join("xtask").join("chart");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let helm = locate_helm(args.helm.as_deref())?;
    println!("chart: helm {} ({})", helm_version(&helm)?, helm.display());
    let validator = Validator::ensure(&args.python, &work)?;

    let mut failures: Vec<String> = Vec::new();
    let rendered_dir = work.join("rendered");
    fs::create_dir_all(&rendered_dir)?;

    let mut renders = Vec::new();
    for values in ci_value_files(&chart)? {
        let name = render_name(&values);
        let lint = helm_cmd(&helm)
            .arg("lint")
            .arg("--strict")
            .arg(&chart)
            .args(["--kube-version", RENDER_KUBE_VERSION])
            .arg("-f")
            .arg(&values)
            .output()?;
        if !lint.status.success() {
            failures.push(format!(
                "{name}: helm lint --strict failed:\n{}",
                output_text(&lint)
            ));
            continue;
        }
        let out = helm_template(&helm, &chart, &[OsStr::new("-f"), values.as_os_str()])?;
        if !out.status.success() {
            failures.push(format!(
                "{name}: helm template failed:\n{}",
                output_text(&out)
            ));
            continue;
        }
        let text = String::from_utf8(out.stdout).context("helm output is not UTF-8")?;
        let path = rendered_dir.join(format!("{name}.yaml"));
        fs::write(&path, &text)?;
        println!("chart: {name}: lint ok, rendered {} bytes", text.len());
        renders.push((name, path, text));
    }

    // Strict schema validation of every render at once, per Kubernetes version.
    let paths: Vec<&Path> = renders.iter().map(|(_, p, _)| p.as_path()).collect();
    if !paths.is_empty() {
        for version in SCHEMA_KUBE_VERSIONS {
            match validator.validate(version, &paths) {
                Ok(()) => {
                    println!("chart: strict schema validation against Kubernetes {version}: ok")
                }
                Err(e) => failures.push(format!(
                    "strict schema validation against Kubernetes {version}:\n{e:#}"
                )),
            }
        }
    }

    // Policy checks and snapshots.
    let docs = validator.to_json(&paths)?;
    let release = policy::Release {
        name: RELEASE,
        namespace: NAMESPACE,
    };
    let snapshots = chart.join("tests").join("snapshots");
    for (name, path, text) in &renders {
        let key = path.to_string_lossy().into_owned();
        let objects = docs.get(&key).map(Vec::as_slice).unwrap_or_default();
        let violations = policy::check(objects, &release);
        if violations.is_empty() {
            println!("chart: {name}: {} objects, policy ok", objects.len());
        } else {
            failures.push(format!("{name}: policy:\n  {}", violations.join("\n  ")));
        }
        let snap = snapshots.join(format!("{name}.yaml"));
        if args.bless {
            fs::create_dir_all(&snapshots)?;
            fs::write(&snap, text)?;
        } else if let Some(diff) = snapshot_diff(&snap, text)? {
            failures.push(format!(
                "{name}: render differs from {} (run `cargo xtask chart --bless` if the change is intended):\n{diff}",
                snap.display()
            ));
        }
    }
    if args.bless {
        remove_stale_snapshots(
            &snapshots,
            &renders
                .iter()
                .map(|(n, _, _)| n.clone())
                .collect::<Vec<_>>(),
        )?;
        println!("chart: snapshots written to {}", snapshots.display());
    }

    // Negative cases: the checks above can fail.
    failures.extend(check_bad_values(&helm, &chart)?);
    failures.extend(check_validator_rejects_unknown_fields(
        &validator, &renders, &work,
    )?);
    failures.extend(check_policy_rejects_privileged(
        &helm, &chart, &validator, &work, &release,
    )?);
    failures.extend(check_agent_contract(
        &helm,
        &chart,
        &validator,
        &work,
        args.agent_bin.as_deref(),
        &root,
    )?);

    if failures.is_empty() {
        println!("chart: all checks passed ({} renders)", renders.len());
        Ok(())
    } else {
        for f in &failures {
            eprintln!("chart: FAILED: {f}\n");
        }
        bail!("{} chart check(s) failed", failures.len())
    }
}

/// The Helm binary: `--helm`, then `$HELM`, then the local-cluster tooling's pinned build, then
/// `helm` on `PATH`.
pub(crate) fn locate_helm(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--helm {} does not exist", path.display());
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "HELM={} does not exist", path.display());
        return Ok(path);
    }
    if let Some(path) = local_cluster_helm() {
        return Ok(path);
    }
    if let Some(path) = find_on_path("helm") {
        return Ok(path);
    }
    bail!(
        "no helm found: pass --helm PATH, set HELM, or put helm on PATH \
         (the local-cluster tooling builds a pinned one with Go)"
    )
}

/// The Helm that the local-cluster tooling builds (once, then cached) from its pinned Go module.
/// Unavailable without a Go toolchain; the caller then falls back to `PATH`.
fn local_cluster_helm() -> Option<PathBuf> {
    match crate::cluster::helm_path() {
        Ok(path) => Some(path),
        Err(e) => {
            eprintln!(
                "chart: the pinned helm build is unavailable ({e:#}); looking for helm on PATH"
            );
            None
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn helm_version(helm: &Path) -> Result<String> {
    let out = Command::new(helm)
        .args(["version", "--short"])
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    ensure!(
        out.status.success(),
        "{} version failed:\n{}",
        helm.display(),
        output_text(&out)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A Helm command isolated from the user's Helm configuration and repositories.
fn helm_cmd(helm: &Path) -> Command {
    let mut cmd = Command::new(helm);
    let scratch = std::env::temp_dir().join("gpu-mcp-xtask-helm");
    cmd.env("HELM_CONFIG_HOME", scratch.join("config"))
        .env("HELM_CACHE_HOME", scratch.join("cache"))
        .env("HELM_DATA_HOME", scratch.join("data"));
    cmd
}

/// `helm template` of the chart as the documented release, with extra arguments.
fn helm_template(helm: &Path, chart: &Path, extra: &[&OsStr]) -> Result<Output> {
    helm_cmd(helm)
        .arg("template")
        .arg(RELEASE)
        .arg(chart)
        .args([
            "--namespace",
            NAMESPACE,
            "--kube-version",
            RENDER_KUBE_VERSION,
        ])
        .args(extra)
        .output()
        .with_context(|| format!("running {} template", helm.display()))
}

fn ci_value_files(chart: &Path) -> Result<Vec<PathBuf>> {
    let dir = chart.join("ci");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    ensure!(
        !files.is_empty(),
        "no *-values.yaml files in {}",
        dir.display()
    );
    Ok(files)
}

/// `ci/gateway-values.yaml` renders as `gateway`.
fn render_name(values: &Path) -> String {
    let file = values
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.trim_end_matches(".yaml")
        .trim_end_matches("-values")
        .to_owned()
}

/// `None` when the snapshot matches; otherwise a short line diff.
fn snapshot_diff(snapshot: &Path, actual: &str) -> Result<Option<String>> {
    let expected = match fs::read_to_string(snapshot) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some("  (the snapshot does not exist yet)".to_owned()));
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", snapshot.display())),
    };
    if expected == actual {
        return Ok(None);
    }
    Ok(Some(line_diff(&expected, actual, 40)))
}

/// A line diff of two texts (longest common subsequence): each changed line with its line number
/// in the snapshot (`-`) or in the new render (`+`), at most `limit` lines.
fn line_diff(expected: &str, actual: &str, limit: usize) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of e[i..] and a[j..].
    let mut lcs = vec![vec![0u32; a.len() + 1]; e.len() + 1];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i][j] = if e[i] == a[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            i += 1;
            j += 1;
        } else if j < a.len() && (i == e.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            lines.push(format!("  +{:>5} | {}", j + 1, a[j]));
            j += 1;
        } else {
            lines.push(format!("  -{:>5} | {}", i + 1, e[i]));
            i += 1;
        }
    }
    let more = lines.len().saturating_sub(limit);
    lines.truncate(limit);
    if more > 0 {
        lines.push(format!("  ... and {more} more changed lines"));
    }
    lines.join("\n")
}

fn remove_stale_snapshots(dir: &Path, names: &[String]) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.extension() == Some(OsStr::new("yaml")) && !names.contains(&stem) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Every file in `tests/bad-values/` starts with `# expect: <text>`; Helm must refuse the file
/// and name `<text>` (the offending key's path) in its message.
fn check_bad_values(helm: &Path, chart: &Path) -> Result<Vec<String>> {
    let dir = chart.join("tests").join("bad-values");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension() == Some(OsStr::new("yaml")))
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no bad-value files in {}", dir.display());
    let mut failures = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = fs::read_to_string(&file)?;
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
            .map(str::trim)
        else {
            failures.push(format!(
                "bad-values/{name}: first line must be `# expect: <key>`"
            ));
            continue;
        };
        let out = helm_template(helm, chart, &[OsStr::new("-f"), file.as_os_str()])?;
        let message = output_text(&out);
        if out.status.success() {
            failures.push(format!("bad-values/{name}: helm accepted invalid values"));
        } else if !message.contains(expect) {
            failures.push(format!("bad-values/{name}: helm refused it, but its message does not name {expect:?}:\n{message}"));
        } else {
            let reason = message
                .lines()
                .find(|l| l.contains(expect))
                .unwrap_or_default()
                .trim();
            println!("chart: bad-values/{name}: refused ({reason})");
        }
    }
    Ok(failures)
}

/// The validator must refuse a manifest with an unknown field (it is run in strict mode).
fn check_validator_rejects_unknown_fields(
    validator: &Validator,
    renders: &[(String, PathBuf, String)],
    work: &Path,
) -> Result<Vec<String>> {
    let Some((_, _, text)) = renders.first() else {
        return Ok(Vec::new());
    };
    let needle = "\nspec:\n";
    let Some(at) = text.find(needle) else {
        return Ok(vec![
            "validator self-check: the first render has no top-level spec".to_owned(),
        ]);
    };
    let tampered = format!(
        "{}{}  bogusField: true\n{}",
        &text[..at],
        needle,
        &text[at + needle.len()..]
    );
    let path = work.join("unknown-field.yaml");
    fs::write(&path, tampered)?;
    Ok(
        match validator.validate(SCHEMA_KUBE_VERSIONS[0], &[&path]) {
            Err(e) if format!("{e:#}").contains("bogusField") => {
                println!("chart: validator self-check: an unknown field is refused");
                Vec::new()
            }
            Err(e) => vec![format!(
                "validator self-check: refused for another reason: {e:#}"
            )],
            Ok(()) => vec![
                "validator self-check: a manifest with an unknown field passed validation"
                    .to_owned(),
            ],
        },
    )
}

/// Renders the chart with `--set <set>` into `<work>/<name>.yaml` and returns its objects as
/// JSON, or Helm's output when the render fails.
fn render_with(
    helm: &Path,
    chart: &Path,
    validator: &Validator,
    work: &Path,
    name: &str,
    set: &str,
) -> Result<std::result::Result<Vec<Value>, String>> {
    let out = helm_template(helm, chart, &[OsStr::new("--set"), OsStr::new(set)])?;
    if !out.status.success() {
        return Ok(Err(output_text(&out)));
    }
    let path = work.join(format!("{name}.yaml"));
    fs::write(&path, &out.stdout)?;
    let mut docs = validator.to_json(&[&path])?;
    Ok(Ok(docs
        .remove(path.to_string_lossy().as_ref())
        .unwrap_or_default()))
}

/// The policy must refuse the opt-in privileged agent (`agent.kmsg.privileged=true`).
fn check_policy_rejects_privileged(
    helm: &Path,
    chart: &Path,
    validator: &Validator,
    work: &Path,
    release: &policy::Release<'_>,
) -> Result<Vec<String>> {
    let objects = match render_with(
        helm,
        chart,
        validator,
        work,
        "privileged",
        "agent.kmsg.privileged=true",
    )? {
        Ok(objects) => objects,
        Err(helm_output) => {
            return Ok(vec![format!(
                "policy self-check: helm template failed:\n{helm_output}"
            )]);
        }
    };
    let violations = policy::check(&objects, release);
    Ok(
        if violations
            .iter()
            .any(|v| v.contains("privileged containers are not allowed"))
        {
            println!("chart: policy self-check: a privileged agent is refused");
            Vec::new()
        } else {
            vec![format!(
                "policy self-check: a privileged agent passed the policy ({violations:?})"
            )]
        },
    )
}

/// The rendered agent configuration starts a working agent, over HTTP and as the one-shot
/// process of exec routing (see [`contract`]).
fn check_agent_contract(
    helm: &Path,
    chart: &Path,
    validator: &Validator,
    work: &Path,
    agent_bin: Option<&Path>,
    root: &Path,
) -> Result<Vec<String>> {
    let agent_bin = match agent_bin {
        Some(path) => path.to_owned(),
        None => {
            let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .current_dir(root)
                .args(["build", "--quiet", "-p", "gpu-mcp-agent"])
                .status()
                .context("running cargo build -p gpu-mcp-agent")?;
            ensure!(
                status.success(),
                "cargo build -p gpu-mcp-agent failed ({status})"
            );
            target_dir(root).join("debug").join("gpu-mcp-agent")
        }
    };
    let set = "agent.nvmlMode=mock,gateway.enabled=true,gateway.routing=exec";
    let objects = match render_with(helm, chart, validator, work, "contract", set)? {
        Ok(objects) => objects,
        Err(helm_output) => {
            return Ok(vec![format!(
                "contract: helm template --set {set} failed:\n{helm_output}"
            )]);
        }
    };
    let objects = objects.as_slice();
    let mut failures = Vec::new();
    match contract::check_daemonset(objects, &agent_bin, &work.join("contract-agent.log")) {
        Ok(()) => {
            println!("chart: contract: the rendered agent container starts and becomes ready")
        }
        Err(e) => failures.push(format!("contract: {e:#}")),
    }
    match contract::check_exec_command(objects, &agent_bin) {
        Ok(()) => println!(
            "chart: contract: the gateway's exec command answers with the agent's environment"
        ),
        Err(e) => failures.push(format!("contract: {e:#}")),
    }
    Ok(failures)
}

/// `kubernetes-validate` in its own virtual environment, and the environment's Python (with
/// PyYAML, a dependency of the validator) to turn renders into JSON for the policy checks.
#[derive(Debug)]
struct Validator {
    bin: PathBuf,
    python: PathBuf,
}

impl Validator {
    /// Creates `target/xtask/chart/venv` with the pinned validator unless it is already there.
    fn ensure(python: &Path, work: &Path) -> Result<Self> {
        let venv = work.join("venv");
        let stamp = venv.join("installed.txt");
        let bin = venv.join("bin").join("kubernetes-validate");
        let venv_python = venv.join("bin").join("python");
        let ready = fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == KUBERNETES_VALIDATE)
            && bin.is_file();
        if !ready {
            println!(
                "chart: installing {KUBERNETES_VALIDATE} into {}",
                venv.display()
            );
            let log = work.join("venv-install.log");
            let _ = fs::remove_dir_all(&venv);
            let out = Command::new(python)
                .args(["-m", "venv"])
                .arg(&venv)
                .output()
                .with_context(|| {
                    format!(
                        "running {} -m venv (Python 3 with the venv module is required)",
                        python.display()
                    )
                })?;
            fs::write(&log, output_text(&out))?;
            ensure!(
                out.status.success(),
                "{} -m venv failed; see {}",
                python.display(),
                log.display()
            );
            let out = Command::new(&venv_python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                    KUBERNETES_VALIDATE,
                ])
                .output()
                .context("running pip")?;
            fs::write(&log, output_text(&out))?;
            ensure!(
                out.status.success(),
                "pip install {KUBERNETES_VALIDATE} failed; see {}",
                log.display()
            );
            fs::write(&stamp, KUBERNETES_VALIDATE)?;
        }
        Ok(Self {
            bin,
            python: venv_python,
        })
    }

    /// Validates the files strictly (unknown fields are errors) against one Kubernetes version.
    /// A missing schema is accepted only for the CRD kinds in [`CRD_KINDS`].
    fn validate(&self, version: &str, files: &[&Path]) -> Result<()> {
        let out = Command::new(&self.bin)
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(files)
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let text = output_text(&out);
        let mut problems: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ERROR") || l.starts_with("WARN") || l.contains("Traceback"))
            .filter(|l| {
                !CRD_KINDS
                    .iter()
                    .any(|k| l.starts_with("WARN") && l.contains(&format!("schema for kind {k} ")))
            })
            .collect();
        if !out.status.success() && problems.is_empty() {
            problems.push(text.trim());
        }
        ensure!(problems.is_empty(), "{}", problems.join("\n"));
        Ok(())
    }

    /// Every YAML document of each file as JSON, keyed by the file's path.
    fn to_json(&self, files: &[&Path]) -> Result<BTreeMap<String, Vec<Value>>> {
        if files.is_empty() {
            return Ok(BTreeMap::new());
        }
        const SCRIPT: &str = "import json, sys, yaml\n\
            out = {}\n\
            for path in sys.argv[1:]:\n\
            \x20   with open(path) as f:\n\
            \x20       out[path] = [d for d in yaml.safe_load_all(f) if d is not None]\n\
            json.dump(out, sys.stdout)\n";
        let out = Command::new(&self.python)
            .args(["-c", SCRIPT])
            .args(files)
            .output()
            .context("running the YAML to JSON conversion")?;
        ensure!(
            out.status.success(),
            "YAML to JSON conversion failed:\n{}",
            output_text(&out)
        );
        serde_json::from_slice(&out.stdout).context("parsing the converted renders")
    }
}

fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// The workspace root (this crate's parent directory).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// `target/`, honouring `CARGO_TARGET_DIR`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's scenario names are exactly the mock backend's, so a typo fails at install
    /// time and a new scenario cannot be forgotten.
    #[test]
    fn schema_lists_every_mock_scenario() {
        let path = workspace_root().join(CHART_DIR).join("values.schema.json");
        let schema: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        let listed: Vec<&str> = schema
            .pointer("/properties/agent/properties/mockScenario/enum")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut expected = vec![""];
        expected.extend(gpu_mcp_backend::Scenario::ALL.iter().map(|s| s.as_str()));
        assert_eq!(listed, expected);
    }

    #[test]
    fn render_names_come_from_value_files() {
        assert_eq!(
            render_name(Path::new("ci/exec-routing-values.yaml")),
            "exec-routing"
        );
        assert_eq!(render_name(Path::new("default-values.yaml")), "default");
    }

    #[test]
    fn line_diff_shows_only_the_changed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n", 10);
        assert_eq!(d, "  -    2 | b\n  +    2 | B");
        // An insertion early on does not turn the rest of the file into changes.
        let d = line_diff("a\nb\nc\nd\n", "a\nnew\nb\nc\nD\n", 10);
        assert_eq!(d, "  +    2 | new\n  -    4 | d\n  +    5 | D");
        let many: String = (0..30).map(|i| format!("{i}\n")).collect();
        let d = line_diff("", &many, 5);
        assert!(d.ends_with("... and 25 more changed lines"), "{d}");
    }

    #[test]
    fn snapshot_drift_is_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-chart-snap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let snap = dir.join("x.yaml");
        assert!(
            snapshot_diff(&snap, "a\n")
                .unwrap()
                .unwrap()
                .contains("does not exist")
        );
        fs::write(&snap, "a\n").unwrap();
        assert_eq!(snapshot_diff(&snap, "a\n").unwrap(), None);
        assert!(snapshot_diff(&snap, "b\n").unwrap().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }
}
