//! Arguments of the GPU tools.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::output::{InventorySection, Verdict};

/// Default Xid window of the health verdict ([`HealthArgs::xid_since`]).
pub const DEFAULT_HEALTH_XID_WINDOW: &str = "24h";

/// Arguments of `get_gpu_inventory`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryArgs {
    /// Only the GPU with this index (as in `nvidia-smi -i`).
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Only the GPU with this UUID (`GPU-...`).
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// The sections listed per GPU; default identity, memory, thermal, power, ecc, pcie and
    /// nvlink (every section with `full`).
    #[serde(default)]
    pub sections: Option<Vec<InventorySection>>,
    /// Every section, and every NVLink link with its counters rather than only the links that
    /// are down or have errors.
    #[serde(default)]
    pub full: bool,
}

/// Arguments of `get_gpu_health`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Only the GPU with this index.
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Only the GPU with this UUID (`GPU-...`).
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// Xid events newer than this count toward the verdict: a window such as `30m`, `6h`, `7d`,
    /// or an RFC 3339 time. Default `24h`.
    #[serde(default)]
    pub xid_since: Option<String>,
    /// How much the answer lists. `full` (default): every GPU with its reasons, notes and the
    /// checks that could not run. `problems`: the node's verdict, counts and summary, its
    /// node-level findings, and only the GPUs that need attention with their findings; healthy
    /// GPUs are counted, not listed. `summary`: the verdict, counts and summary only.
    #[serde(default)]
    pub detail: Option<HealthDetail>,
    /// With `detail: problems`, the mildest verdict listed (default `warning`): `degraded` or
    /// `critical` leave out milder GPUs and findings.
    #[serde(default)]
    pub min_verdict: Option<Verdict>,
}

/// How much a `get_gpu_health` answer lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthDetail {
    /// The node's verdict, GPU counts and summary only.
    Summary,
    /// The summary, node-level findings, and the GPUs that need attention with their findings.
    Problems,
    /// Every GPU.
    #[default]
    Full,
}

impl HealthDetail {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Problems => "problems",
            Self::Full => "full",
        }
    }
}

impl HealthArgs {
    /// The mildest verdict a `problems` answer lists: `min_verdict`, at least `warning`.
    pub fn mildest_listed(&self) -> Verdict {
        self.min_verdict
            .unwrap_or(Verdict::Warning)
            .max(Verdict::Warning)
    }
}

/// Arguments of `analyze_xid_errors`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only events of the GPU with this index.
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Only events of the GPU with this UUID (`GPU-...`).
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// Only events newer than this: a window such as `30m`, `1h`, `7d`, or an RFC 3339 time.
    /// Default: everything still in the kernel log and recorded since the agent started.
    #[serde(default)]
    pub since: Option<String>,
    /// Most individual events listed, newest first (1 to 1000, default 50). Groups always
    /// count every event.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// How much the answer lists. `full` (default): the groups and the individual events.
    /// `summary`: the groups and counts only, no individual events.
    #[serde(default)]
    pub detail: Option<XidDetail>,
}

/// How much an `analyze_xid_errors` answer lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum XidDetail {
    /// The groups and counts only.
    Summary,
    /// The groups and the individual events.
    #[default]
    Full,
}

impl XidDetail {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Full => "full",
        }
    }
}
