//! What each NVSwitch SXid code means and what an operator should do about it.
//!
//! The names come from one checked-in table, `sxid_catalog.tsv`, taken from NVIDIA's Fabric
//! Manager User Guide (the table names its source and the date it was read). How serious one
//! occurrence is follows the driver's own word on its line (`Fatal` or `Non-fatal`), except for
//! the codes the guide calls always fatal, which are fatal whatever the word; a line without the
//! word falls back to the table's class, and an unknown code without it counts as non-fatal. The
//! actions are this project's policy, decided here once and documented in
//! `docs/health-rules.md`:
//!
//! * fatal: the NVSwitch and the GPUs behind it need the fabric reset (every GPU and NVSwitch of
//!   the baseboard together), which Fabric Manager does only with the GPUs idle;
//! * always fatal: the same reset, said to be needed for the whole fabric even when the line
//!   calls the occurrence non-fatal;
//! * non-fatal: nothing to do for one; repeats on a port point at the link.

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::XidSeverity;

/// The checked-in table the SXid catalog is read from.
pub const SXID_CATALOG_TSV: &str = include_str!("sxid_catalog.tsv");

/// What the operator does after a fatal SXid.
pub const FATAL_SXID_ACTION: &str = "Drain the node: the NVSwitch and the GPUs behind it need a reset of the NVLink fabric. Stop the GPU workloads, reset all GPUs and NVSwitches of the HGX baseboard together (nvidia-smi -r with nvidia-fabricmanager stopped, or reboot the node), then start nvidia-fabricmanager again; if the same SXid returns, have the NVSwitch baseboard inspected.";

/// What the operator does after an SXid the guide calls always fatal.
pub const ALWAYS_FATAL_SXID_ACTION: &str = "Drain the node: NVIDIA's Fabric Manager guide lists this SXid as always fatal to the whole NVLink fabric, whatever the line's own word. Stop the GPU workloads and reset every GPU and NVSwitch of the node together (restart the host, or nvidia-smi -r with nvidia-fabricmanager stopped), then start nvidia-fabricmanager again; if the same SXid returns, have the NVSwitch baseboard inspected.";

/// What the operator does after non-fatal SXids.
pub const NON_FATAL_SXID_ACTION: &str = "No action for one occurrence. Watch for repeats: non-fatal SXids repeating on the same NVSwitch port point at the link; check its GPU's NVLink counters (nvidia-smi nvlink -e) and plan a drain and fabric reset if they keep growing.";

/// NVIDIA's class of an SXid: the table of the Fabric Manager guide that lists it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SxidClass {
    /// "Non-Fatal NVSwitch SXid Errors".
    NonFatal,
    /// "Fatal NVSwitch SXid Errors".
    Fatal,
}

/// The catalog entry of one SXid code, for one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SxidInfo {
    /// The code.
    pub code: u32,
    /// False when the code is not in the catalog (its name is then generic).
    pub known: bool,
    /// NVIDIA's name.
    pub name: &'static str,
    /// What the guide says it does, in short; empty for an unknown code.
    pub impact: &'static str,
    /// The guide says the code is fatal to the entire fabric whatever the line's own word.
    pub always_fatal: bool,
    /// Whether this occurrence is fatal: always for an always-fatal code, else the line's word,
    /// else the catalog's class.
    pub fatal: bool,
    /// `critical` for a fatal occurrence, `warning` otherwise.
    pub severity: XidSeverity,
    /// What the operator should do.
    pub action: &'static str,
}

#[derive(Debug)]
struct Entry {
    code: u32,
    name: &'static str,
    class: SxidClass,
    always_fatal: bool,
    impact: &'static str,
}

fn parse_row(line: &'static str) -> Option<Entry> {
    let f: Vec<&'static str> = line.split('\t').collect();
    let [code, name, class, always_fatal, impact] = f.as_slice() else {
        return None;
    };
    let class = match *class {
        "non_fatal" => SxidClass::NonFatal,
        "fatal" => SxidClass::Fatal,
        _ => return None,
    };
    let always_fatal = match *always_fatal {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    // An always-fatal code is of the fatal class.
    if always_fatal && class != SxidClass::Fatal {
        return None;
    }
    Some(Entry {
        code: code.parse().ok()?,
        name,
        class,
        always_fatal,
        impact,
    })
}

fn data_rows() -> impl Iterator<Item = &'static str> {
    super::catalog::table_rows(SXID_CATALOG_TSV)
}

static CATALOG: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut v: Vec<Entry> = data_rows().filter_map(parse_row).collect();
    v.sort_by_key(|e| e.code);
    v.dedup_by_key(|e| e.code);
    v
});

/// The catalog's class of `code`, when the code is in the catalog.
pub fn sxid_class(code: u32) -> Option<SxidClass> {
    let i = CATALOG.binary_search_by_key(&code, |e| e.code).ok()?;
    Some(CATALOG[i].class)
}

/// Whether the guide calls `code` fatal to the entire fabric whatever its line says.
pub fn sxid_always_fatal(code: u32) -> bool {
    CATALOG
        .binary_search_by_key(&code, |e| e.code)
        .is_ok_and(|i| CATALOG[i].always_fatal)
}

/// The entry of `code` for an occurrence whose line said `fatal` (`None`: the line did not
/// say). An always-fatal code is fatal whatever the line says; an unknown code is kept with a
/// generic name and judged by the line's word.
pub fn lookup_sxid(code: u32, fatal: Option<bool>) -> SxidInfo {
    let entry = CATALOG
        .binary_search_by_key(&code, |e| e.code)
        .ok()
        .map(|i| &CATALOG[i]);
    let always_fatal = entry.is_some_and(|e| e.always_fatal);
    let fatal =
        always_fatal || fatal.unwrap_or_else(|| entry.is_some_and(|e| e.class == SxidClass::Fatal));
    SxidInfo {
        code,
        known: entry.is_some(),
        name: entry.map_or("SXid not in the catalog", |e| e.name),
        impact: entry.map_or("", |e| e.impact),
        always_fatal,
        fatal,
        severity: if fatal {
            XidSeverity::Critical
        } else {
            XidSeverity::Warning
        },
        action: if always_fatal {
            ALWAYS_FATAL_SXID_ACTION
        } else if fatal {
            FATAL_SXID_ACTION
        } else {
            NON_FATAL_SXID_ACTION
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table_parses() {
        let rows: Vec<&str> = data_rows().collect();
        assert!(rows.len() >= 60, "{}", rows.len());
        for row in &rows {
            assert!(parse_row(row).is_some(), "malformed row: {row}");
        }
        assert_eq!(CATALOG.len(), rows.len(), "a code is listed twice");
        assert!(SXID_CATALOG_TSV.contains("Source: NVIDIA Fabric Manager User Guide"));
    }

    #[test]
    fn the_lines_word_decides_and_unknown_codes_are_kept() {
        let a = lookup_sxid(12028, Some(false));
        assert!(a.known && !a.fatal);
        assert_eq!(a.severity, XidSeverity::Warning);
        let b = lookup_sxid(24007, Some(true));
        assert!(b.known && b.fatal);
        assert_eq!(b.action, FATAL_SXID_ACTION);
        assert!(
            lookup_sxid(20034, None).fatal,
            "the class when the line is silent"
        );
        let u = lookup_sxid(99_999, Some(true));
        assert!(!u.known && u.fatal && u.code == 99_999);
        assert!(!lookup_sxid(99_999, None).fatal);
    }

    #[test]
    fn always_fatal_codes_are_fatal_whatever_the_line_says() {
        for code in [12020, 22003, 22011, 23001, 23009, 23017, 10003] {
            for word in [Some(false), Some(true), None] {
                let i = lookup_sxid(code, word);
                assert!(i.known && i.always_fatal && i.fatal, "{code} {word:?}");
                assert_eq!(i.severity, XidSeverity::Critical);
                assert_eq!(i.action, ALWAYS_FATAL_SXID_ACTION);
            }
            assert!(sxid_always_fatal(code));
        }
        // Codes of the fatal table still follow the line's word.
        assert!(!sxid_always_fatal(24007));
        assert!(!lookup_sxid(24007, Some(false)).fatal);
        // The notable codes the guide calls not fatal are non-fatal.
        for code in [10001, 10002, 10004, 10005] {
            let i = lookup_sxid(code, None);
            assert!(i.known && !i.fatal && !i.always_fatal, "{code}");
        }
        let n = data_rows()
            .filter_map(parse_row)
            .filter(|e| e.always_fatal)
            .count();
        assert_eq!(n, 21, "the always-fatal table's 20 codes and 10003");
        assert!(SXID_CATALOG_TSV.contains("Always Fatal NVSwitch SXid Errors"));
    }
}
