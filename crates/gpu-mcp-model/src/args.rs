//! Arguments of the GPU tools.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::output::InventorySection;

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
}
