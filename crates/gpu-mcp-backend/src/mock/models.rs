//! The GPU models the mock simulates, with each model's real identity, limits and features.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A GPU model the mock can simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuModel {
    /// NVIDIA A100-SXM4-80GB (Ampere, HGX A100).
    A100Sxm4_80gb,
    /// NVIDIA H100 80GB HBM3 (Hopper, HGX H100).
    H100Hbm3_80gb,
    /// NVIDIA L4 (Ada, PCIe).
    L4,
    /// Tesla V100-SXM2-32GB (Volta; page retirement instead of row remapping).
    V100Sxm2_32gb,
}

impl GpuModel {
    /// Every model.
    pub const ALL: [GpuModel; 4] = [
        Self::A100Sxm4_80gb,
        Self::H100Hbm3_80gb,
        Self::L4,
        Self::V100Sxm2_32gb,
    ];

    /// The short name accepted by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A100Sxm4_80gb => "A100-SXM4-80GB",
            Self::H100Hbm3_80gb => "H100-80GB-HBM3",
            Self::L4 => "L4",
            Self::V100Sxm2_32gb => "V100-SXM2-32GB",
        }
    }

    pub(super) fn spec(self) -> &'static ModelSpec {
        match self {
            Self::A100Sxm4_80gb => &A100,
            Self::H100Hbm3_80gb => &H100,
            Self::L4 => &L4_SPEC,
            Self::V100Sxm2_32gb => &V100,
        }
    }
}

impl fmt::Display for GpuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn model_key(s: &str) -> String {
    let key: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let key = key.strip_prefix("nvidia").unwrap_or(&key);
    key.strip_prefix("tesla").unwrap_or(key).to_owned()
}

impl FromStr for GpuModel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key = model_key(s);
        Self::ALL
            .into_iter()
            .find(|m| model_key(m.as_str()) == key || model_key(m.spec().name) == key)
            .ok_or_else(|| Error::UnknownModel {
                name: s.to_owned(),
                known: Self::ALL.map(GpuModel::as_str).join(", "),
            })
    }
}

/// How the GPUs of a model's typical server are connected to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interconnect {
    /// Every NVLink link goes to an NVSwitch on the baseboard (HGX).
    NvSwitch,
    /// NVLink links go straight to other GPUs (a hybrid cube mesh, as on DGX-1).
    DirectNvlink,
    /// No NVLink: PCIe only.
    Pcie,
}

/// What the mock needs to know about a model: its identity, limits and features.
pub(super) struct ModelSpec {
    pub(super) name: &'static str,
    pub(super) architecture: &'static str,
    pub(super) compute_capability: &'static str,
    pub(super) vbios: &'static str,
    pub(super) memory_mib: u64,
    pub(super) bar1_mib: u64,
    pub(super) power_limit_w: f64,
    pub(super) slowdown_c: u32,
    pub(super) shutdown_c: u32,
    pub(super) gpu_max_c: u32,
    pub(super) memory_max_c: Option<u32>,
    pub(super) max_graphics_mhz: u32,
    pub(super) max_memory_mhz: u32,
    pub(super) pcie_gen: u32,
    pub(super) nvlinks: u32,
    pub(super) row_remapping: bool,
    pub(super) page_retirement: bool,
    /// The MIG layout of the `mig-enabled` scenario: profile, memory in MiB, and the placement
    /// (first memory slice, slices) of each GPU instance, one that NVIDIA's placement table for
    /// the model allows (3g at slice 0, 2g at 4, 1g at 6: no two instances share a slice).
    pub(super) mig_profiles: &'static [(&'static str, u64, u32, u32)],
    pub(super) recovery_action: bool,
    pub(super) pci_buses: &'static [u8],
    pub(super) serial_prefix: &'static str,
    /// How the model's GPUs are connected in its typical server.
    pub(super) interconnect: Interconnect,
    /// The NVSwitch fabric registration is reported (Hopper and later).
    pub(super) fabric_info: bool,
    /// GPUs behind one PCIe switch in the typical server.
    pub(super) gpus_per_pcie_switch: u32,
    /// CPU cores per socket of the typical two-socket host (hyperthreads follow all cores).
    pub(super) cores_per_socket: u32,
}

static A100: ModelSpec = ModelSpec {
    name: "NVIDIA A100-SXM4-80GB",
    architecture: "Ampere",
    compute_capability: "8.0",
    vbios: "92.00.45.00.06",
    memory_mib: 81_920,
    bar1_mib: 131_072,
    power_limit_w: 400.0,
    slowdown_c: 89,
    shutdown_c: 92,
    gpu_max_c: 85,
    memory_max_c: Some(95),
    max_graphics_mhz: 1410,
    max_memory_mhz: 1593,
    pcie_gen: 4,
    nvlinks: 12,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[
        ("3g.40gb", 40_192, 0, 4),
        ("2g.20gb", 19_968, 4, 2),
        ("1g.10gb", 9_728, 6, 1),
    ],
    recovery_action: true,
    pci_buses: &[0x07, 0x0f, 0x47, 0x4e, 0x87, 0x90, 0xb7, 0xbd],
    serial_prefix: "1323",
    interconnect: Interconnect::NvSwitch,
    fabric_info: false,
    gpus_per_pcie_switch: 2,
    cores_per_socket: 64,
};

static H100: ModelSpec = ModelSpec {
    name: "NVIDIA H100 80GB HBM3",
    architecture: "Hopper",
    compute_capability: "9.0",
    vbios: "96.00.99.00.01",
    memory_mib: 81_559,
    bar1_mib: 131_072,
    power_limit_w: 700.0,
    slowdown_c: 89,
    shutdown_c: 92,
    gpu_max_c: 87,
    memory_max_c: Some(95),
    max_graphics_mhz: 1980,
    max_memory_mhz: 2619,
    pcie_gen: 5,
    nvlinks: 18,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[
        ("3g.40gb", 40_448, 0, 4),
        ("2g.20gb", 20_096, 4, 2),
        ("1g.10gb", 9_984, 6, 1),
    ],
    recovery_action: true,
    pci_buses: &[0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb],
    serial_prefix: "1652",
    interconnect: Interconnect::NvSwitch,
    fabric_info: true,
    gpus_per_pcie_switch: 1,
    cores_per_socket: 56,
};

static L4_SPEC: ModelSpec = ModelSpec {
    name: "NVIDIA L4",
    architecture: "Ada",
    compute_capability: "8.9",
    vbios: "95.04.29.00.06",
    memory_mib: 23_034,
    bar1_mib: 32_768,
    power_limit_w: 72.0,
    slowdown_c: 93,
    shutdown_c: 98,
    gpu_max_c: 90,
    memory_max_c: None,
    max_graphics_mhz: 2040,
    max_memory_mhz: 6251,
    pcie_gen: 4,
    nvlinks: 0,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[],
    recovery_action: false,
    pci_buses: &[0x01, 0x02, 0x41, 0x61, 0x81, 0xa1, 0xc1, 0xe1],
    serial_prefix: "1321",
    interconnect: Interconnect::Pcie,
    fabric_info: false,
    gpus_per_pcie_switch: 2,
    cores_per_socket: 32,
};

static V100: ModelSpec = ModelSpec {
    name: "Tesla V100-SXM2-32GB",
    architecture: "Volta",
    compute_capability: "7.0",
    vbios: "88.00.80.00.01",
    memory_mib: 32_768,
    bar1_mib: 32_768,
    power_limit_w: 300.0,
    slowdown_c: 87,
    shutdown_c: 90,
    gpu_max_c: 83,
    memory_max_c: Some(85),
    max_graphics_mhz: 1530,
    max_memory_mhz: 877,
    pcie_gen: 3,
    nvlinks: 6,
    row_remapping: false,
    page_retirement: true,
    mig_profiles: &[],
    recovery_action: false,
    pci_buses: &[0x15, 0x16, 0x3a, 0x3b, 0x89, 0x8a, 0xb2, 0xb3],
    serial_prefix: "0323",
    interconnect: Interconnect::DirectNvlink,
    fabric_info: false,
    gpus_per_pcie_switch: 2,
    cores_per_socket: 20,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_or_without_vendor_prefixes() {
        for m in GpuModel::ALL {
            assert_eq!(m.as_str().parse::<GpuModel>().unwrap(), m);
        }
        assert_eq!(
            "NVIDIA H100 80GB HBM3".parse::<GpuModel>().unwrap(),
            GpuModel::H100Hbm3_80gb
        );
        assert_eq!(
            "nvidia a100-sxm4-80gb".parse::<GpuModel>().unwrap(),
            GpuModel::A100Sxm4_80gb
        );
        assert!("B200".parse::<GpuModel>().is_err());
    }
}
