//! Xid evidence: attribution of events to GPUs, merging of kernel-log and recorded events, and
//! grouping per GPU and code.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use gpu_mcp_model::output::{XidGroup, XidRecord};
use gpu_mcp_model::time::format_rfc3339;
use gpu_mcp_model::xid::{XidInfo, assess, normalize_pci_bus_id};
use gpu_mcp_model::{NodeSnapshot, XidEvent, XidSource};

/// How close in time a recorded event and a kernel-log line must be to count as one event.
const SAME_EVENT: Duration = Duration::from_secs(5);

/// Whether an event happened at or after `since`. An event whose time cannot be told (a
/// kernel-log line without a usable timestamp) is never recent: counting it as recent would
/// keep a node critical forever over an Xid from a year ago.
pub(crate) fn is_since(ev: &XidEvent, since: SystemTime) -> bool {
    ev.time.is_some_and(|t| t >= since)
}

/// Lookup tables from what an event names to the GPU index.
#[derive(Debug, Default)]
pub(crate) struct GpuKeys {
    by_uuid: HashMap<String, u32>,
    by_pci: HashMap<String, u32>,
    uuid_of: HashMap<u32, String>,
}

impl GpuKeys {
    pub(crate) fn new(snapshot: Option<&NodeSnapshot>) -> Self {
        let mut k = GpuKeys::default();
        for g in snapshot.map(|s| s.gpus.as_slice()).unwrap_or_default() {
            if let Some(u) = g.uuid.value() {
                k.by_uuid.insert(u.to_ascii_lowercase(), g.index);
                k.uuid_of.insert(g.index, u.clone());
            }
            if let Some(p) = g.pci_bus_id.value().and_then(|p| normalize_pci_bus_id(p)) {
                k.by_pci.insert(p, g.index);
            }
        }
        k
    }

    fn index_of(&self, ev: &XidEvent) -> Option<u32> {
        ev.gpu_index
            .or_else(|| {
                ev.gpu_uuid
                    .as_ref()
                    .and_then(|u| self.by_uuid.get(&u.to_ascii_lowercase()).copied())
            })
            .or_else(|| {
                ev.pci_bus_id
                    .as_ref()
                    .and_then(|p| self.by_pci.get(p).copied())
            })
    }
}

/// One event after attribution and merging.
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    pub(crate) ev: XidEvent,
    pub(crate) gpu_index: Option<u32>,
    pub(crate) sources: Vec<XidSource>,
    pub(crate) info: XidInfo,
}

fn close(a: Option<SystemTime>, b: Option<SystemTime>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = a.duration_since(b).or_else(|_| b.duration_since(a));
            d.is_ok_and(|d| d <= SAME_EVENT)
        }
        _ => false,
    }
}

/// Attributes events to GPUs and merges a recorded event into the kernel-log line of the same
/// occurrence; returns the events oldest first.
pub(crate) fn merge(kernel: Vec<XidEvent>, recorded: Vec<XidEvent>, keys: &GpuKeys) -> Vec<Merged> {
    let mut out: Vec<Merged> = Vec::with_capacity(kernel.len() + recorded.len());
    let mut index: HashMap<(u32, Option<u32>), Vec<usize>> = HashMap::new();
    for mut ev in kernel {
        let gpu_index = keys.index_of(&ev);
        if ev.gpu_uuid.is_none()
            && let Some(u) = gpu_index.and_then(|i| keys.uuid_of.get(&i))
        {
            ev.gpu_uuid = Some(u.clone());
        }
        index
            .entry((ev.xid, gpu_index))
            .or_default()
            .push(out.len());
        let info = assess(ev.xid, &ev.message);
        out.push(Merged {
            sources: vec![ev.source],
            ev,
            gpu_index,
            info,
        });
    }
    let mut matched = vec![false; out.len()];
    for mut ev in recorded {
        let gpu_index = keys.index_of(&ev);
        if let Some(cands) = index.get(&(ev.xid, gpu_index))
            && let Some(&i) = cands
                .iter()
                .find(|&&i| !matched[i] && close(out[i].ev.time, ev.time))
        {
            matched[i] = true;
            if !out[i].sources.contains(&ev.source) {
                out[i].sources.push(ev.source);
            }
            continue;
        }
        if ev.gpu_uuid.is_none()
            && let Some(u) = gpu_index.and_then(|i| keys.uuid_of.get(&i))
        {
            ev.gpu_uuid = Some(u.clone());
        }
        let info = assess(ev.xid, &ev.message);
        out.push(Merged {
            sources: vec![ev.source],
            ev,
            gpu_index,
            info,
        });
    }
    out.sort_by_key(|m| (m.ev.time, m.ev.uptime_us));
    out
}

fn fmt_time(t: Option<SystemTime>) -> Option<String> {
    t.map(format_rfc3339)
}

/// Groups events per GPU and code; worst first, then most frequent.
pub(crate) fn group(events: &[&Merged]) -> Vec<XidGroup> {
    let mut groups: BTreeMap<(Option<u32>, Option<String>, u32), XidGroup> = BTreeMap::new();
    for m in events {
        let key_pci = if m.gpu_index.is_some() {
            None
        } else {
            m.ev.pci_bus_id.clone().or_else(|| m.ev.gpu_uuid.clone())
        };
        let g = groups
            .entry((m.gpu_index, key_pci, m.ev.xid))
            .or_insert_with(|| XidGroup {
                gpu_index: m.gpu_index,
                gpu_uuid: m.ev.gpu_uuid.clone(),
                pci_bus_id: m.ev.pci_bus_id.clone(),
                xid: m.ev.xid,
                known: m.info.known,
                mnemonic: m.info.mnemonic.to_owned(),
                name: m.info.name.to_owned(),
                category: m.info.category.to_owned(),
                severity: m.info.severity,
                application_error: m.info.application_error,
                action: m.info.action.to_owned(),
                count: 0,
                first_seen: None,
                last_seen: None,
                sources: Vec::new(),
                last_message: String::new(),
            });
        g.count += 1;
        g.severity = g.severity.max(m.info.severity);
        if g.first_seen.is_none() {
            g.first_seen = fmt_time(m.ev.time);
        }
        if m.ev.time.is_some() {
            g.last_seen = fmt_time(m.ev.time);
        }
        if g.gpu_uuid.is_none() {
            g.gpu_uuid.clone_from(&m.ev.gpu_uuid);
        }
        if g.pci_bus_id.is_none() {
            g.pci_bus_id.clone_from(&m.ev.pci_bus_id);
        }
        for s in &m.sources {
            if !g.sources.contains(s) {
                g.sources.push(*s);
            }
        }
        if !m.ev.message.is_empty() {
            g.last_message.clone_from(&m.ev.message);
        }
    }
    let mut v: Vec<XidGroup> = groups.into_values().collect();
    v.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.gpu_index.cmp(&b.gpu_index))
            .then(a.xid.cmp(&b.xid))
    });
    v
}

/// The listed form of one event.
pub(crate) fn record(m: &Merged) -> XidRecord {
    XidRecord {
        time: fmt_time(m.ev.time),
        uptime_seconds: m
            .ev
            .uptime_us
            .map(|u| (u as f64 / 1e6 * 1000.0).round() / 1000.0),
        gpu_index: m.gpu_index,
        gpu_uuid: m.ev.gpu_uuid.clone(),
        pci_bus_id: m.ev.pci_bus_id.clone(),
        gpu_instance: m.ev.gpu_instance,
        compute_instance: m.ev.compute_instance,
        xid: m.ev.xid,
        name: m.info.name.to_owned(),
        severity: m.info.severity,
        sources: m.sources.clone(),
        pid: m.ev.pid,
        pod: None,
        process_name: m.ev.process_name.clone(),
        message: m.ev.message.clone(),
        implied: m.ev.implied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(xid: u32, source: XidSource, secs: u64, pci: &str) -> XidEvent {
        XidEvent {
            xid,
            source,
            pci_bus_id: Some(pci.to_owned()),
            gpu_uuid: None,
            gpu_index: None,
            gpu_instance: None,
            compute_instance: None,
            pid: None,
            process_name: None,
            message: String::new(),
            time: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            uptime_us: None,
            implied: false,
        }
    }

    #[test]
    fn a_recorded_event_merges_into_its_kernel_line() {
        let keys = GpuKeys::default();
        let merged = merge(
            vec![ev(79, XidSource::KernelLog, 100, "0000:3b:00.0")],
            vec![
                ev(79, XidSource::NvmlEvent, 102, "0000:3b:00.0"),
                ev(79, XidSource::NvmlEvent, 400, "0000:3b:00.0"),
            ],
            &keys,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].sources,
            vec![XidSource::KernelLog, XidSource::NvmlEvent]
        );
        let refs: Vec<&Merged> = merged.iter().collect();
        let groups = group(&refs);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].count, 2);
        assert_eq!(
            groups[0].first_seen.as_deref(),
            Some("1970-01-01T00:01:40Z")
        );
        assert_eq!(groups[0].last_seen.as_deref(), Some("1970-01-01T00:06:40Z"));
    }

    #[test]
    fn groups_are_worst_first() {
        let keys = GpuKeys::default();
        let merged = merge(
            vec![
                ev(13, XidSource::KernelLog, 1, "0000:3b:00.0"),
                ev(13, XidSource::KernelLog, 2, "0000:3b:00.0"),
                ev(48, XidSource::KernelLog, 3, "0000:3b:00.0"),
            ],
            vec![],
            &keys,
        );
        let refs: Vec<&Merged> = merged.iter().collect();
        let g = group(&refs);
        assert_eq!(g[0].xid, 48);
        assert_eq!(g[1].count, 2);
    }
}
