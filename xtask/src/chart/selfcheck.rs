//! The checks must be able to fail: bad values refused by the schema, an unknown field refused
//! by the validator, a privileged agent refused by the policy; and the agent contract.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use gpu_mcp_testbed::chart::{contract, policy};
use gpu_mcp_testbed::util::cmd::output_text;
use gpu_mcp_testbed::util::workspace;
use serde_json::Value;

use super::validator::Validator;
use super::{SCHEMA_KUBE_VERSIONS, helm_template};

/// Every file in `tests/bad-values/` starts with `# expect: <text>`; Helm must refuse the file
/// and name `<text>` (the offending key's path) in its message.
pub(super) fn bad_values(helm: &Path, chart: &Path) -> Result<Vec<String>> {
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
pub(super) fn validator_rejects_unknown_fields(
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
pub(super) fn policy_rejects_privileged(
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
pub(super) fn agent_contract(
    helm: &Path,
    chart: &Path,
    validator: &Validator,
    work: &Path,
    agent_bin: Option<&Path>,
) -> Result<Vec<String>> {
    let agent_bin = match agent_bin {
        Some(path) => path.to_owned(),
        None => {
            // Stage 1's debug build, reused (see `Workspace::build`).
            let ws = workspace::Workspace::new(false);
            ws.build(&["gpu-mcp-agent"])?;
            ws.binary("gpu-mcp-agent")
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
