//! How the simulated node looks: [`MockConfig`] from flags or a JSON profile file, resolved to
//! one model and scenario per GPU.

use std::time::SystemTime;

use serde::Deserialize;

use super::models::GpuModel;
use super::scenarios::Scenario;
use crate::{Error, Result};

/// One GPU of an explicit layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockGpu {
    /// The model.
    pub model: GpuModel,
    /// The scenario applied to this GPU.
    pub scenario: Scenario,
}

/// How the simulated node looks.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Node name; GPU identities derive from it.
    pub node_name: String,
    /// Number of GPUs (ignored when `layout` is not empty).
    pub gpus: usize,
    /// Model of every GPU (ignored when `layout` is not empty).
    pub model: GpuModel,
    /// Scenario applied to `affected_gpu` (ignored when `layout` is not empty).
    pub scenario: Scenario,
    /// Index of the GPU the scenario applies to.
    pub affected_gpu: u32,
    /// An explicit per-GPU layout (from a profile file).
    pub layout: Vec<MockGpu>,
    /// Reported driver version.
    pub driver_version: String,
    /// Reported CUDA driver version.
    pub cuda_version: String,
    /// The time the mock treats as "now" when it starts (events are placed before it); the
    /// system clock when `None`.
    pub now: Option<SystemTime>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            node_name: "mock-node".to_owned(),
            gpus: 8,
            model: GpuModel::H100Hbm3_80gb,
            scenario: Scenario::Healthy,
            affected_gpu: 0,
            layout: Vec::new(),
            driver_version: "570.133.20".to_owned(),
            cuda_version: "12.8".to_owned(),
            now: None,
        }
    }
}

/// The JSON form of a mock profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    node_name: Option<String>,
    driver_version: Option<String>,
    cuda_version: Option<String>,
    gpus: Vec<ProfileGpu>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileGpu {
    model: String,
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    scenario: Option<String>,
}

fn one() -> usize {
    1
}

/// Most GPUs a mock node may have.
pub const MAX_MOCK_GPUS: usize = 64;

impl MockConfig {
    /// Parses a JSON profile, e.g.
    /// `{"node_name": "gpu-7", "gpus": [{"model": "H100-80GB-HBM3", "count": 7},
    /// {"model": "H100-80GB-HBM3", "scenario": "xid-79"}]}`.
    pub fn from_profile_str(s: &str) -> Result<MockConfig> {
        let p: Profile = serde_json::from_str(s)
            .map_err(|e| Error::MockConfig(format!("profile is not valid: {e}")))?;
        let mut cfg = MockConfig::default();
        if let Some(n) = p.node_name {
            cfg.node_name = n;
        }
        if let Some(d) = p.driver_version {
            cfg.driver_version = d;
        }
        if let Some(c) = p.cuda_version {
            cfg.cuda_version = c;
        }
        for g in p.gpus {
            let model: GpuModel = g.model.parse()?;
            let scenario = match g.scenario {
                Some(s) => s.parse()?,
                None => Scenario::Healthy,
            };
            if cfg.layout.len() + g.count > MAX_MOCK_GPUS {
                return Err(Error::MockConfig(format!(
                    "a mock node has at most {MAX_MOCK_GPUS} GPUs"
                )));
            }
            cfg.layout
                .extend(std::iter::repeat_n(MockGpu { model, scenario }, g.count));
        }
        cfg.gpus = cfg.layout.len();
        Ok(cfg)
    }

    /// One entry per GPU: the explicit layout, or `gpus` GPUs of `model` with `scenario` on
    /// `affected_gpu`; fails on a configuration the mock cannot build.
    pub(super) fn resolved_layout(&self) -> Result<Vec<MockGpu>> {
        if !self.layout.is_empty() {
            if self.layout.len() > MAX_MOCK_GPUS {
                return Err(Error::MockConfig(format!(
                    "a mock node has at most {MAX_MOCK_GPUS} GPUs"
                )));
            }
            return Ok(self.layout.clone());
        }
        if self.gpus > MAX_MOCK_GPUS {
            return Err(Error::MockConfig(format!(
                "{} GPUs requested; a mock node has at most {MAX_MOCK_GPUS}",
                self.gpus
            )));
        }
        if self.gpus > 0 && self.affected_gpu as usize >= self.gpus {
            return Err(Error::MockConfig(format!(
                "affected GPU {} does not exist on a node with {} GPUs",
                self.affected_gpu, self.gpus
            )));
        }
        Ok((0..self.gpus)
            .map(|i| MockGpu {
                model: self.model,
                scenario: if i == self.affected_gpu as usize {
                    self.scenario
                } else {
                    Scenario::Healthy
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_parses_layout() {
        let cfg = MockConfig::from_profile_str(
            r#"{"node_name":"gpu-7","gpus":[{"model":"H100-80GB-HBM3","count":3},{"model":"L4","scenario":"thermal-slowdown"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.node_name, "gpu-7");
        assert_eq!(cfg.layout.len(), 4);
        assert_eq!(cfg.layout[3].model, GpuModel::L4);
        assert_eq!(cfg.layout[3].scenario, Scenario::ThermalSlowdown);
        for bad in [
            "",
            "{}",
            r#"{"gpus":[{"model":"B999"}]}"#,
            r#"{"gpus":[{"model":"L4","scenario":"nope"}]}"#,
            r#"{"gpus":[{"model":"L4","count":100}]}"#,
            r#"{"gpus":[],"extra":1}"#,
        ] {
            assert!(MockConfig::from_profile_str(bad).is_err(), "{bad}");
        }
    }
}
