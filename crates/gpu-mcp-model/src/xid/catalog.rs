//! What each Xid code means and what an operator should do about it.
//!
//! Names follow NVIDIA's Xid catalog; severities and actions are this project's operator policy
//! (documented in `docs/health-rules.md`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How serious an Xid is for the GPU.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum XidSeverity {
    /// Informational; nothing to do on its own.
    Info,
    /// Needs attention (often an application error, or a recoverable hardware event).
    Warning,
    /// The GPU needs an operator: drain, reset, reboot or replace.
    Critical,
}

impl std::fmt::Display for XidSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// The catalog entry of one Xid code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidInfo {
    /// The code.
    pub code: u32,
    /// False when the code is not in the catalog.
    pub known: bool,
    /// NVIDIA's mnemonic, e.g. `ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS`.
    pub mnemonic: &'static str,
    /// Short human name.
    pub name: &'static str,
    /// Cause category (`memory`, `nvlink`, `bus`, `application`, ...).
    pub category: &'static str,
    /// Severity.
    pub severity: XidSeverity,
    /// What the operator should do.
    pub action: &'static str,
    /// Usually caused by the application rather than the hardware.
    pub application_error: bool,
}

use XidSeverity::{Critical as C, Info as I, Warning as W};

const RESTART_APP: &str = "Restart the application; if it recurs with different workloads, run GPU diagnostics (dcgmi diag -r 3).";
const RESET_GPU: &str =
    "Drain the GPU, then reset it (nvidia-smi -r -i <index>); contact the vendor if it recurs.";
const NVLINK5: &str = "Check NVLink cabling and the peer GPU or switch; if the message says Fatal, drain and reset the GPU.";

#[rustfmt::skip]
static CATALOG: &[(u32, &str, &str, &str, XidSeverity, &str, bool)] = &[
    (8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "Channel idle timeout: the GPU stopped processing", "application", W, RESTART_APP, false),
    (13, "ROBUST_CHANNEL_GR_EXCEPTION", "Graphics engine exception (illegal instruction or out-of-range access)", "application", W, RESTART_APP, true),
    (31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "GPU memory page fault (illegal address)", "application", W, RESTART_APP, true),
    (32, "ROBUST_CHANNEL_PBDMA_ERROR", "Corrupted push buffer stream (PBDMA error)", "bus", W, "Restart the application; if it repeats, check the PCIe link and host memory.", false),
    (38, "ROBUST_CHANNEL_FECS_ERR_WATCHDOG_TIMEOUT", "Driver firmware (FECS) watchdog timeout", "driver", W, "No immediate action; update the driver if it recurs.", false),
    (43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "GPU stopped processing: channel reset after an application fault", "application", I, "None: the application's channel was reset; look at the application's own error.", true),
    (44, "ROBUST_CHANNEL_GR_FAULT_DURING_CTXSW", "Graphics engine fault during a context switch", "driver", W, "No immediate action; reset the GPU if it persists.", false),
    (45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "Preemptive channel cleanup after an earlier error", "application", I, "None on its own; act on the Xid reported just before it.", true),
    (46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", "GPU timeout: the GPU stopped processing", "hardware", C, RESET_GPU, false),
    (48, "ROBUST_CHANNEL_GPU_ECC_DBE", "Uncorrectable (double-bit) ECC error", "memory", C, "Drain the GPU and reset it so the faulty memory is remapped or retired; replace the board if the remap fails (Xid 64) or it recurs.", false),
    (54, "SILENT_RUNNING_PWR_REDUCED_CLOCKING", "Auxiliary power not connected: running at reduced clocks", "power", C, "Check the GPU's power cabling and power supply.", false),
    (56, "DISPLAY_CHANNEL_EXCEPTION", "Display engine error", "driver", I, "None.", false),
    (57, "FB_LINK_TRAINING_FAILURE_ERROR", "Video memory interface programming error", "memory", W, "Contact the vendor if it repeats.", false),
    (61, "PMU_BREAKPOINT", "PMU micro-controller breakpoint", "firmware", W, "Reset the GPU if it repeats.", false),
    (62, "PMU_HALT_ERROR", "Internal micro-controller halt", "hardware", C, "Drain and reset the GPU; check cooling; replace the board if it recurs.", false),
    (63, "INFOROM_DRAM_RETIREMENT_EVENT", "Row remap or page retirement recorded", "memory", W, "Reset the GPU at the next drain so the pending row remap takes effect (pre-Ampere: reload the driver to retire the page).", false),
    (64, "INFOROM_DRAM_RETIREMENT_FAILURE", "Row remap or page retirement failed", "memory", C, "Drain and reset the GPU, then run field diagnostics; a failed remap is the RMA criterion: replace the board.", false),
    (65, "ROBUST_CHANNEL_NVENC1_ERROR", "Video processor exception", "hardware", W, "Reset the GPU if it repeats.", false),
    (68, "ROBUST_CHANNEL_NVDEC0_ERROR", "Video decoder (NVDEC) exception", "application", W, RESTART_APP, true),
    (69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "Graphics engine class error", "application", W, RESTART_APP, true),
    (74, "NVLINK_ERROR", "NVLink error", "nvlink", C, "Drain the node, check NVLink connections and reset the GPU; contact the vendor if it persists.", false),
    (79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "GPU has fallen off the bus", "bus", C, "Drain and reboot the node; check power and cooling; replace the board if it recurs.", false),
    (80, "PBDMA_PUSHBUFFER_CRC_MISMATCH", "Corrupted data sent to the GPU (CRC mismatch)", "bus", W, "Restart the application; check the PCIe link and host memory.", false),
    (81, "ROBUST_CHANNEL_VGA_SUBSYSTEM_ERROR", "VGA subsystem error", "hardware", W, "Contact the vendor.", false),
    (92, "EXCESSIVE_SBE_INTERRUPTS", "High rate of corrected (single-bit) ECC errors", "memory", W, "No immediate action; watch for Xid 48, 63 or 64.", false),
    (93, "INFOROM_ERASE_LIMIT_EXCEEDED", "InfoROM wear limit exceeded", "hardware", W, "No immediate action; contact the vendor.", false),
    (94, "ROBUST_CHANNEL_CONTAINED_ERROR", "Contained uncorrectable memory error", "memory", W, "Restart the affected application; the GPU stays usable. Reset it at the next drain to apply the row remap.", false),
    (95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "Uncontained uncorrectable memory error", "memory", C, "Drain the GPU and reset it; every application on it was affected.", false),
    (109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "Context switch timeout", "application", W, "Restart the application; reset the GPU if it repeats.", true),
    (110, "SEC_FAULT_ERROR", "Security fault", "hardware", C, RESET_GPU, false),
    (119, "GSP_RPC_TIMEOUT", "GSP firmware RPC timeout", "firmware", C, "Drain and reset the GPU (often a node reboot is needed); update the driver.", false),
    (120, "GSP_ERROR", "GSP firmware error", "firmware", C, "Drain and reset the GPU; update the driver.", false),
    (121, "C2C_ERROR", "Chip-to-chip (C2C) link error", "bus", W, "Monitor; contact the vendor if it repeats.", false),
    (122, "SPI_PMU_RPC_READ_FAIL", "SPI flash read failed", "firmware", W, "Contact the vendor.", false),
    (123, "SPI_PMU_RPC_WRITE_FAIL", "SPI flash write failed", "firmware", C, "Contact the vendor.", false),
    (136, "ALI_TRAINING_FAIL", "NVLink link training failed", "nvlink", C, "Check NVLink connections and reset the GPU.", false),
    (137, "NVLINK_PRIV_ERR", "NVLink privilege error", "nvlink", W, "Restart the application.", true),
    (140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", "Unrecovered ECC error escaped containment", "memory", C, "Drain and reset the GPU; contact the vendor.", false),
    (143, "GPU_INIT_ERROR", "GPU initialisation failure", "hardware", C, "Reset the GPU; replace the board if it persists.", false),
    (144, "NVLINK_SAW_ERROR", "NVLink SAW unit error", "nvlink", W, NVLINK5, false),
    (145, "NVLINK_RLW_ERROR", "NVLink RLW unit error", "nvlink", W, NVLINK5, false),
    (146, "NVLINK_TLW_ERROR", "NVLink TLW unit error", "nvlink", W, NVLINK5, false),
    (147, "NVLINK_TREX_ERROR", "NVLink TREX unit error", "nvlink", W, NVLINK5, false),
    (148, "NVLINK_NVLPW_CTRL_ERROR", "NVLink NVLPW control error", "nvlink", W, NVLINK5, false),
    (149, "NVLINK_NETIR_ERROR", "NVLink NETIR error (link down or error-rate event)", "nvlink", W, NVLINK5, false),
    (150, "NVLINK_MSE_ERROR", "NVLink MSE firmware watchdog error", "nvlink", C, RESET_GPU, false),
    (151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR", "Confidential-computing key rotation error", "driver", C, "Restart the VM.", false),
    (154, "GPU_RECOVERY_ACTION_CHANGED", "Driver's recommended recovery action changed", "recovery", W, "Do what the message says (reset the GPU, reboot the node, or drain).", false),
    (155, "NVLINK_SW_DEFINED_ERROR", "NVLink software-defined error", "nvlink", C, RESET_GPU, false),
    (156, "RESOURCE_RETIREMENT_EVENT", "Resource retirement event", "memory", W, "Reset the GPU at the next drain.", false),
    (157, "RESOURCE_RETIREMENT_FAILURE", "Resource retirement failure", "memory", W, "Contact the vendor.", false),
    (158, "GPU_FATAL_TIMEOUT", "GPU fatal timeout", "hardware", C, RESET_GPU, false),
    (159, "ROBUST_CHANNEL_CHI_NON_DATA_ERROR", "Coherent fabric (CHI) non-data error", "bus", W, "Check the application and UVM usage.", false),
    (160, "CHANNEL_RETIREMENT_EVENT", "Channel retirement event (memory marked for repair on Blackwell)", "memory", I, "None.", false),
    (161, "CHANNEL_RETIREMENT_FAILURE", "Channel retirement failure", "driver", W, "None; contact the vendor if it recurs.", false),
    (162, "PSHC_REENGAGED", "Power-smoothing circuitry re-engaged", "power", I, "None.", false),
    (163, "PSHC_DISENGAGED", "Power-smoothing circuitry disengaged", "power", W, "Check the power supply.", false),
    (164, "PSHC_LOW_LIFETIME", "Power-smoothing circuitry lifetime low", "power", I, "Plan maintenance of the power-smoothing circuitry.", false),
    (165, "PSHC_ZERO_LIFETIME", "Power-smoothing circuitry lifetime exhausted", "power", W, "Contact the vendor.", false),
    (166, "NVLINK_SECURE_CRYPTO_ERR", "Confidential-computing NVLink crypto error", "nvlink", W, "Check the confidential-computing configuration.", false),
    (167, "PCIE_FATAL_TIMEOUT", "PCIe fatal timeout", "bus", C, "Drain and reboot the node.", false),
    (168, "REDUCED_GPU_MEMORY_CAPACITY", "Reduced GPU memory capacity after errors", "memory", C, "Contact the vendor.", false),
    (169, "SEC2_HALT_ERROR", "SEC2 micro-controller halt", "firmware", C, RESET_GPU, false),
    (170, "NVLINK_SECURE_OTHER", "Confidential-computing NVLink error", "nvlink", W, "Check the confidential-computing configuration.", false),
    (171, "UNCORRECTABLE_DRAM_ERROR", "Uncorrectable DRAM error (detail of Xid 48)", "memory", C, "Treat as Xid 48: drain and reset the GPU.", false),
    (172, "UNCORRECTABLE_SRAM_ERROR", "Uncorrectable SRAM error (detail of Xid 48)", "memory", C, "Treat as Xid 48: drain and reset the GPU.", false),
];

/// The catalog entry of `code`; an unknown code gets an entry with `known: false`.
pub fn lookup(code: u32) -> XidInfo {
    match CATALOG.binary_search_by_key(&code, |e| e.0) {
        Ok(i) => {
            let (code, mnemonic, name, category, severity, action, app) = CATALOG[i];
            XidInfo {
                code,
                known: true,
                mnemonic,
                name,
                category,
                severity,
                action,
                application_error: app,
            }
        }
        Err(_) => XidInfo {
            code,
            known: false,
            mnemonic: "UNKNOWN",
            name: "Unknown Xid (not in this catalog)",
            category: "unknown",
            severity: XidSeverity::Warning,
            action: "Look the code up in NVIDIA's Xid catalog for this driver version; treat it as a hardware problem if it repeats.",
            application_error: false,
        },
    }
}

/// The catalog entry adjusted by what the driver printed: NVLink5 Xids (144-149) are critical
/// when the message says `Fatal`, and Xid 154 takes the severity of the new recovery action.
pub fn assess(code: u32, message: &str) -> XidInfo {
    let mut info = lookup(code);
    match code {
        144..=149 if message.split_whitespace().any(|w| w == "Fatal") => {
            info.severity = XidSeverity::Critical;
        }
        154 => {
            let target = message.rsplit_once(" to ").map_or("", |(_, t)| t);
            let t = target.to_ascii_lowercase();
            info.severity = if t.contains("(none)") {
                XidSeverity::Info
            } else if t.contains("drain p2p") {
                XidSeverity::Warning
            } else if t.contains("reset") || t.contains("reboot") {
                XidSeverity::Critical
            } else {
                XidSeverity::Warning
            };
        }
        _ => {}
    }
    info
}

/// Every code in the catalog, ascending.
pub fn known_codes() -> impl Iterator<Item = u32> {
    CATALOG.iter().map(|e| e.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_unique() {
        assert!(CATALOG.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn known_codes_have_names_and_actions() {
        let i = lookup(79);
        assert!(i.known);
        assert_eq!(i.mnemonic, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS");
        assert_eq!(i.severity, XidSeverity::Critical);
        assert!(lookup(13).application_error);
        assert_eq!(lookup(94).severity, XidSeverity::Warning);
        assert_eq!(lookup(95).severity, XidSeverity::Critical);
    }

    #[test]
    fn unknown_codes_are_reported_as_unknown() {
        let i = lookup(4242);
        assert!(!i.known);
        assert_eq!(i.code, 4242);
        assert_eq!(i.category, "unknown");
    }

    #[test]
    fn nvlink5_severity_follows_the_fatal_flag() {
        let fatal = "NETIR_LINK_EVT  Fatal   XC0 i0 Link 14 (0x0215c5c6 0x00000000)";
        let nonfatal = "NETIR_LINK_EVT  Nonfatal   XC0 i0 Link 14 (0x0215c5c6 0x00000000)";
        assert_eq!(assess(149, fatal).severity, XidSeverity::Critical);
        assert_eq!(assess(149, nonfatal).severity, XidSeverity::Warning);
    }

    #[test]
    fn xid_154_takes_the_new_recovery_action() {
        let m = |to: &str| format!("GPU recovery action changed from 0x0 (None) to {to}");
        assert_eq!(
            assess(154, &m("0x4 (Drain and Reset)")).severity,
            XidSeverity::Critical
        );
        assert_eq!(
            assess(154, &m("0x2 (Node Reboot Required)")).severity,
            XidSeverity::Critical
        );
        assert_eq!(
            assess(154, &m("0x3 (Drain P2P)")).severity,
            XidSeverity::Warning
        );
        assert_eq!(assess(154, &m("0x0 (None)")).severity, XidSeverity::Info);
    }
}
