//! The external programs the kind e2e needs, found (and checked) up front.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use super::HELP;
use crate::chart;

/// The external programs, found (and checked) up front.
#[derive(Debug)]
pub(super) struct Tools {
    pub(super) docker: PathBuf,
    pub(super) kind: PathBuf,
    pub(super) kubectl: PathBuf,
    pub(super) helm: PathBuf,
}

impl Tools {
    /// Probes docker, kind, kubectl and helm; names everything missing at once.
    pub(super) fn find() -> Result<Self> {
        let mut missing = Vec::new();
        let mut probe = |name: &str, args: &[&str]| -> PathBuf {
            let path = PathBuf::from(name);
            match Command::new(&path)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Ok(s) if s.success() => {}
                Ok(_) if name == "docker" => {
                    missing.push("a reachable Docker engine (`docker info` fails)".to_owned())
                }
                Ok(_) => missing.push(format!(
                    "a working {name} (`{name} {}` fails)",
                    args.join(" ")
                )),
                Err(_) => missing.push(format!("{name} on PATH")),
            }
            path
        };
        let docker = probe("docker", &["info"]);
        let kind = probe("kind", &["version"]);
        let kubectl = probe("kubectl", &["version", "--client"]);
        let helm = chart::locate_helm(None).unwrap_or_else(|e| {
            missing.push(format!("helm ({e:#})"));
            PathBuf::from("helm")
        });
        if !missing.is_empty() {
            bail!("missing: {}.\n{HELP}", missing.join(", "));
        }
        Ok(Self {
            docker,
            kind,
            kubectl,
            helm,
        })
    }
}
