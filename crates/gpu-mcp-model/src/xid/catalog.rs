//! What each Xid code means and what an operator should do about it.
//!
//! The catalog is generated from one checked-in table, `catalog.tsv`, whose first columns are
//! NVIDIA's Xid catalog for Ampere and newer GPUs (mnemonic, description, and the immediate and
//! investigatory "resolution buckets"; the table names its source and the date it was read).
//! Severity, category and the operator's action are this project's policy, decided here once:
//!
//! * severity follows NVIDIA's immediate action ([`bucket_severity`]) unless the table gives one;
//! * an Xid is an application error when NVIDIA's investigatory action points at the
//!   application (`CHECK_APP/CUDA`, `WORKFLOW_XID_13`, `WORKFLOW_XID_31`, `XID_137_FLOW`) unless
//!   the table says otherwise;
//! * the action is NVIDIA's guidance for the immediate bucket, followed by the investigatory
//!   guidance when it adds something, unless the table gives a specific action.
//!
//! The policy is documented in `docs/health-rules.md`.

use std::sync::LazyLock;

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
    /// Short human name (NVIDIA's description).
    pub name: &'static str,
    /// Cause category (`memory`, `nvlink`, `bus`, `application`, `unused`, ...).
    pub category: &'static str,
    /// Severity.
    pub severity: XidSeverity,
    /// What the operator should do.
    pub action: &'static str,
    /// Usually caused by the application rather than the hardware.
    pub application_error: bool,
    /// NVIDIA's immediate-action resolution bucket (`RESET_GPU`, `RESTART_APP`, ...); empty
    /// when NVIDIA gives none.
    pub immediate_action: &'static str,
    /// NVIDIA's investigatory-action resolution bucket; empty when NVIDIA gives none.
    pub investigatory_action: &'static str,
}

/// The checked-in table the catalog is generated from.
pub const CATALOG_TSV: &str = include_str!("catalog.tsv");

/// The severity an Xid gets from NVIDIA's immediate action.
pub fn bucket_severity(immediate: &str) -> XidSeverity {
    match immediate {
        "IGNORE" | "WORKFLOW_XID_45" => XidSeverity::Info,
        "RESET_GPU"
        | "RESTART_BM"
        | "RESTART_VM"
        | "WORKFLOW_XID_48"
        | "WORKFLOW_NVLINK_ERR"
        | "CHECK_MECHANICALS" => XidSeverity::Critical,
        _ => XidSeverity::Warning,
    }
}

/// What the operator should do for one of NVIDIA's resolution buckets (NVIDIA's "Guidance
/// Classes" sheet, in operator words); `None` for a bucket without guidance of its own.
fn bucket_guidance(bucket: &str) -> Option<&'static str> {
    Some(match bucket {
        "CONTACT_SUPPORT" => "Contact your support organisation for further investigation.",
        "RESTART_APP" => "Restart the application; a GPU reset or node reboot is not needed.",
        "IGNORE" => "No action required.",
        "WORKFLOW_XID_45" => {
            "Follow the guidance of the Xid reported with it; seen alone, restart the fabric manager (nvidia-fabricmanager)."
        }
        "RESET_GPU" => {
            "Drain the GPU, then reset it (nvidia-smi -r -i <index>); a node reboot is not needed unless the reset fails."
        }
        "WORKFLOW_XID_48" => {
            "Drain the GPU, then reset it (with Xid 63 or 64: drain and reset). Run field diagnostics; if the message names an SRAM unit, check the SRAM error threshold flag (nvidia-smi sram_threshold_exceeded) and run field diagnostics if it is set; for framebuffer memory follow Xid 63/64."
        }
        "CHECK_MECHANICALS" => {
            "Check that the GPU is seated and that its power and other connections are secure."
        }
        "WORKFLOW_NVLINK_ERR" => {
            "Drain the GPU, then reset it (or reboot the node) to clear the error; decode the error registers in the message, check the link's mechanical connections and the device at the other end of the link, and contact the vendor if it persists."
        }
        "UPDATE_SWFW" => {
            "Update the firmware and software; for vGPU, check that the guest driver is compatible with the host driver and that the vGPU type is supported."
        }
        "RESTART_BM" => "Drain the node and restart it (bare metal); a GPU reset cannot help.",
        "WORKFLOW_NVLINK5_ERR" => {
            "Decode the message with NVIDIA's Xid 144-150 table: a Fatal error needs the GPU drained, then reset; a non-fatal one needs no immediate action."
        }
        "RESTART_VM" => {
            "Restart the VM that owns the GPU; a GPU reset or node reboot is not needed."
        }
        "XID_154" => {
            "Do what the message says: the recovery action it changed to (drain P2P, drain and reset, GPU reset, or node reboot)."
        }
        "CHECK_UVM" => "If UVM or vGPU is in use, reset the GPU; otherwise no action.",
        "CHECK_APP/CUDA" => {
            "Look for an application passing bad data or using the GPU incorrectly (the message may name the pid); report a driver issue if it is not the application."
        }
        "WORKFLOW_XID_13" | "WORKFLOW_XID_31" => {
            "Look for a pattern: repeats on the same GPU with different applications point at hardware (run DCGM diagnostics, then field diagnostics); otherwise debug the application (cuda-gdb, compute-sanitizer)."
        }
        "XID_137_FLOW" => {
            "Usually an application's illegal NVLink peer-to-peer access: debug it with cuda-gdb or compute-sanitizer."
        }
        "INVESTIGATE_SW" | "INVESTIGATE_SW_USER" => {
            "Investigate the user or NVIDIA software that triggered it (the message may name the pid)."
        }
        "INVESTIGATE_LINK_SI" => "Investigate the link's signal integrity and telemetry.",
        "SYMPATHETIC_REPORT_SOLO" | "IGNORE (sympathetic)" => {
            "Usually a consequence of another error: resolve that one first; report it if it appears alone."
        }
        _ => return None,
    })
}

/// Whether an investigatory bucket points at the application.
fn points_at_application(investigatory: &str) -> bool {
    matches!(
        investigatory,
        "CHECK_APP/CUDA" | "WORKFLOW_XID_13" | "WORKFLOW_XID_31" | "XID_137_FLOW"
    )
}

/// One parsed row of the table.
#[derive(Debug)]
struct Entry {
    code: u32,
    mnemonic: &'static str,
    name: &'static str,
    category: &'static str,
    severity: XidSeverity,
    application_error: bool,
    action: String,
    immediate: &'static str,
    investigatory: &'static str,
}

/// Parses one data row; `None` for a malformed row (a test keeps the table free of them).
fn parse_row(line: &'static str) -> Option<Entry> {
    let f: Vec<&'static str> = line.split('\t').collect();
    let [
        code,
        mnemonic,
        description,
        immediate,
        investigatory,
        category,
        severity,
        app,
        action,
    ] = f.as_slice()
    else {
        return None;
    };
    let (immediate, investigatory): (&'static str, &'static str) = (immediate, investigatory);
    let code: u32 = code.parse().ok()?;
    let severity = match *severity {
        "" => bucket_severity(immediate),
        "info" => XidSeverity::Info,
        "warning" => XidSeverity::Warning,
        "critical" => XidSeverity::Critical,
        _ => return None,
    };
    let application_error = match *app {
        "" => points_at_application(investigatory),
        "y" => true,
        "n" => false,
        _ => return None,
    };
    let action = if action.is_empty() {
        let now = bucket_guidance(immediate).unwrap_or("See NVIDIA's Xid catalog for this code.");
        match bucket_guidance(investigatory) {
            Some(then) if investigatory != immediate && investigatory != "IGNORE" => {
                format!("{now} If it recurs: {then}")
            }
            _ => now.to_owned(),
        }
    } else {
        (*action).to_owned()
    };
    let name = if *description == "Unused" {
        "Unused code (deprecated, or Volta and older GPUs only)"
    } else {
        description
    };
    Some(Entry {
        code,
        mnemonic,
        name,
        category,
        severity,
        application_error,
        action,
        immediate,
        investigatory,
    })
}

/// Data rows of a checked-in catalog table: not comments, not the header, not blank.
pub(crate) fn table_rows(tsv: &'static str) -> impl Iterator<Item = &'static str> {
    tsv.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("code\t"))
}

fn data_rows() -> impl Iterator<Item = &'static str> {
    table_rows(CATALOG_TSV)
}

static CATALOG: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut v: Vec<Entry> = data_rows().filter_map(parse_row).collect();
    v.sort_by_key(|e| e.code);
    v.dedup_by_key(|e| e.code);
    v
});

/// The catalog entry of `code`; an unknown code gets an entry with `known: false`.
pub fn lookup(code: u32) -> XidInfo {
    match CATALOG.binary_search_by_key(&code, |e| e.code) {
        Ok(i) => {
            let e: &'static Entry = &CATALOG[i];
            XidInfo {
                code: e.code,
                known: true,
                mnemonic: e.mnemonic,
                name: e.name,
                category: e.category,
                severity: e.severity,
                action: &e.action,
                application_error: e.application_error,
                immediate_action: e.immediate,
                investigatory_action: e.investigatory,
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
            immediate_action: "",
            investigatory_action: "",
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
    CATALOG.iter().map(|e| e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table_parses_and_codes_are_unique() {
        let rows: Vec<&str> = data_rows().collect();
        for r in &rows {
            assert!(parse_row(r).is_some(), "malformed catalog row: {r}");
        }
        assert_eq!(CATALOG.len(), rows.len(), "duplicate codes in catalog.tsv");
        assert!(CATALOG_TSV.contains("https://docs.nvidia.com/deploy/xid-errors/"));
    }

    #[test]
    fn the_catalog_covers_nvidias_codes_1_to_172() {
        for code in 1..=172 {
            let i = lookup(code);
            assert!(i.known, "Xid {code} missing");
            assert!(!i.action.is_empty(), "Xid {code} has no action");
        }
    }

    #[test]
    fn nvidias_buckets_decide_severity_and_action() {
        // IGNORE: informational, even for codes that look alarming.
        assert_eq!(lookup(63).severity, XidSeverity::Info);
        assert_eq!(lookup(92).severity, XidSeverity::Info);
        // RESET_GPU is critical; Xid 109's immediate action is a reset.
        let i = lookup(109);
        assert_eq!(i.immediate_action, "RESET_GPU");
        assert_eq!(i.severity, XidSeverity::Critical);
        assert!(i.action.contains("reset it (nvidia-smi -r"), "{}", i.action);
        // Xid 45 alone means restart the fabric manager; with others, follow them.
        let i = lookup(45);
        assert_eq!(i.severity, XidSeverity::Info);
        assert!(i.action.contains("fabric manager"), "{}", i.action);
        // 122 and 123 are both unused now: one answer for both.
        assert_eq!(lookup(122).severity, lookup(123).severity);
        assert_eq!(lookup(122).category, "unused");
        // Xid 79: a reboot, never a GPU reset.
        assert!(lookup(79).action.contains("reset cannot help"));
        // The investigatory guidance follows the immediate one.
        assert!(lookup(13).action.contains("If it recurs:"));
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
