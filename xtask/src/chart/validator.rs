//! `kubernetes-validate` in its own virtual environment: strict schema validation of the renders,
//! and the environment's Python turning them into JSON for the policy checks.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use gpu_mcp_testbed::util::cmd::output_text;
use serde_json::Value;

/// Pinned validator release (its schemas cover Kubernetes 1.25 to 1.37).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// Kinds from CRDs that the validator has no schema for; the policy checks their fields.
const CRD_KINDS: &[&str] = &["ServiceMonitor"];

/// `kubernetes-validate` in its own virtual environment, and the environment's Python (with
/// PyYAML, a dependency of the validator) to turn renders into JSON for the policy checks.
#[derive(Debug)]
pub(super) struct Validator {
    bin: PathBuf,
    python: PathBuf,
}

impl Validator {
    /// Creates `target/xtask/chart/venv` with the pinned validator unless it is already there.
    pub(super) fn ensure(python: &Path, work: &Path) -> Result<Self> {
        let venv = work.join("venv");
        let stamp = venv.join("installed.txt");
        let bin = venv.join("bin").join("kubernetes-validate");
        let venv_python = venv.join("bin").join("python");
        // The stamp names the pin and where the venv was made: its scripts start with the
        // absolute path of its interpreter, so a venv moved with its target directory (a
        // copied or renamed checkout) no longer runs and is made again.
        let want = format!("{KUBERNETES_VALIDATE} {}", venv.display());
        let ready = fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) && bin.is_file();
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
            fs::write(&stamp, &want)?;
        }
        Ok(Self {
            bin,
            python: venv_python,
        })
    }

    /// Validates the files strictly (unknown fields are errors) against one Kubernetes version.
    /// A missing schema is accepted only for the CRD kinds in [`CRD_KINDS`].
    pub(super) fn validate(&self, version: &str, files: &[&Path]) -> Result<()> {
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
    pub(super) fn to_json(&self, files: &[&Path]) -> Result<BTreeMap<String, Vec<Value>>> {
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
