//! `cargo xtask chart`: lint, render and check the Helm chart with a real Helm.
//!
//! For every value file in `charts/k8s-gpu-mcp-server/ci/` (Helm's convention for CI values):
//!
//! 1. `helm lint --strict` and `helm template`;
//! 2. every rendered manifest is validated against the Kubernetes OpenAPI schemas with unknown
//!    fields rejected (`kubernetes-validate --strict`, installed by this command into a virtual
//!    environment under `target/`), for the oldest and the newest Kubernetes the chart supports;
//! 3. policy checks (`policy`): no privileged pod, exact RBAC, probes and resources, labels that
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
//!
//! `validator` installs and runs the schema validator, `snapshot` compares renders with their
//! snapshots, `selfcheck` proves the checks can fail; the policy and the agent contract are
//! [`gpu_mcp_testbed::chart`]'s.

mod selfcheck;
mod snapshot;
mod validator;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use gpu_mcp_testbed::chart::{CHART_DIR, NAMESPACE, RELEASE, locate_helm, policy};
use gpu_mcp_testbed::util::{cmd, workspace};

use validator::Validator;

/// Kubernetes version Helm renders for (its `.Capabilities`), within the chart's `kubeVersion`.
const RENDER_KUBE_VERSION: &str = "1.34.0";
/// Kubernetes versions whose schemas every manifest must satisfy: the oldest the chart supports
/// and the newest the validator knows.
const SCHEMA_KUBE_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];

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
    let root = workspace::workspace_root();
    let chart = root.join(CHART_DIR);
    let work = workspace::scratch_dir("chart");
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
                cmd::output_text(&lint)
            ));
            continue;
        }
        let out = helm_template(&helm, &chart, &[OsStr::new("-f"), values.as_os_str()])?;
        if !out.status.success() {
            failures.push(format!(
                "{name}: helm template failed:\n{}",
                cmd::output_text(&out)
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
        } else if let Some(diff) = snapshot::diff(&snap, text)? {
            failures.push(format!(
                "{name}: render differs from {} (run `cargo xtask chart --bless` if the change is intended):\n{diff}",
                snap.display()
            ));
        }
    }
    if args.bless {
        snapshot::remove_stale(
            &snapshots,
            &renders
                .iter()
                .map(|(n, _, _)| n.clone())
                .collect::<Vec<_>>(),
        )?;
        println!("chart: snapshots written to {}", snapshots.display());
    }

    // Negative cases: the checks above can fail.
    failures.extend(selfcheck::bad_values(&helm, &chart)?);
    failures.extend(selfcheck::validator_rejects_unknown_fields(
        &validator, &renders, &work,
    )?);
    failures.extend(selfcheck::policy_rejects_privileged(
        &helm, &chart, &validator, &work, &release,
    )?);
    failures.extend(selfcheck::agent_contract(
        &helm,
        &chart,
        &validator,
        &work,
        args.agent_bin.as_deref(),
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

fn helm_version(helm: &Path) -> Result<String> {
    Ok(
        cmd::output(Command::new(helm).args(["version", "--short"]))?
            .trim()
            .to_owned(),
    )
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
pub(crate) fn helm_template(helm: &Path, chart: &Path, extra: &[&OsStr]) -> Result<Output> {
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
    anyhow::ensure!(
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The schema's scenario names are exactly the mock backend's, so a typo fails at install
    /// time and a new scenario cannot be forgotten.
    #[test]
    fn schema_lists_every_mock_scenario() {
        let path = workspace::workspace_root()
            .join(CHART_DIR)
            .join("values.schema.json");
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
}
