//! NVSwitch SXid evidence: the events of a window grouped per NVSwitch, code and fatality,
//! newest first and bounded, with the catalog's name and action.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use gpu_mcp_model::output::{NvSwitchErrors, SxidGroup};
use gpu_mcp_model::time::format_rfc3339;
use gpu_mcp_model::xid::{SxidEvent, lookup_sxid};

/// Groups listed at most; the counts still cover every event.
pub(crate) const MAX_SXID_GROUPS: usize = 32;
/// Links listed per group at most.
const MAX_LINKS: usize = 16;

/// The SXid events at or after `since` (every event when `None`; an event whose time cannot be
/// told is never recent), grouped, newest group first.
pub(crate) fn sxid_errors(events: &[SxidEvent], since: Option<SystemTime>) -> NvSwitchErrors {
    let mut groups: BTreeMap<(Option<String>, Option<String>, u32, bool), SxidGroup> =
        BTreeMap::new();
    let mut out = NvSwitchErrors::default();
    let recent = events
        .iter()
        .filter(|e| since.is_none_or(|s| e.time.is_some_and(|t| t >= s)));
    for e in recent {
        let info = lookup_sxid(e.sxid, e.fatal);
        out.total_events += 1;
        if info.fatal {
            out.fatal_events += 1;
        }
        let key = (e.pci_bus_id.clone(), e.switch.clone(), e.sxid, info.fatal);
        let g = groups.entry(key).or_insert_with(|| SxidGroup {
            switch: e.switch.clone(),
            instance: e.instance,
            pci_bus_id: e.pci_bus_id.clone(),
            sxid: e.sxid,
            known: info.known,
            name: info.name.to_owned(),
            fatal: info.fatal,
            always_fatal: info.always_fatal,
            severity: info.severity,
            action: info.action.to_owned(),
            count: 0,
            links: Vec::new(),
            first_seen: None,
            last_seen: None,
            last_message: String::new(),
        });
        g.count += 1;
        if let Some(l) = e.link
            && !g.links.contains(&l)
            && g.links.len() < MAX_LINKS
        {
            g.links.push(l);
            g.links.sort_unstable();
        }
        if let Some(t) = e.time {
            let t = format_rfc3339(t);
            if g.first_seen.is_none() {
                g.first_seen = Some(t.clone());
            }
            g.last_seen = Some(t);
        }
        if !e.message.is_empty() {
            g.last_message.clone_from(&e.message);
        }
    }
    let mut v: Vec<SxidGroup> = groups.into_values().collect();
    // Newest first (RFC 3339 in UTC sorts as time); fatal before non-fatal at the same time.
    v.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then(b.fatal.cmp(&a.fatal))
            .then(a.sxid.cmp(&b.sxid))
    });
    out.truncated = v.len() > MAX_SXID_GROUPS;
    v.truncate(MAX_SXID_GROUPS);
    out.groups = v;
    out
}

/// The group's links as `32,33`, or `None` when the lines named no link.
pub(crate) fn link_list(g: &SxidGroup) -> Option<String> {
    (!g.links.is_empty()).then(|| {
        g.links
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Who a group is about, for sentences: the device name and its PCI address when known.
pub(crate) fn switch_name(g: &SxidGroup) -> String {
    match (&g.switch, &g.pci_bus_id) {
        (Some(s), Some(p)) => format!("{s} ({p})"),
        (Some(s), None) => s.clone(),
        (None, Some(p)) => format!("the NVSwitch at {p}"),
        (None, None) => "an unidentified NVSwitch".to_owned(),
    }
}

/// One sentence on the SXids of an answer; empty when there are none.
pub(crate) fn sentence(n: &NvSwitchErrors) -> String {
    if n.is_empty() {
        return String::new();
    }
    let mut s = format!(
        " NVSwitch: {} SXid event(s), {} fatal.",
        n.total_events, n.fatal_events
    );
    if let Some(g) = n.groups.iter().find(|g| g.fatal).or(n.groups.first()) {
        let _ = write!(
            s,
            " {}: SXid {} ({}) on {}, {} time(s): {}",
            if g.fatal { "Fatal" } else { "Newest" },
            g.sxid,
            g.name,
            switch_name(g),
            g.count,
            g.action
        );
    }
    s
}

/// The text lines of the SXid groups.
pub(crate) fn lines(n: &NvSwitchErrors, s: &mut String) {
    for g in &n.groups {
        let links = link_list(g).map_or(String::new(), |l| format!(", link(s) {l}"));
        let _ = write!(
            s,
            "\n- {} SXid {} {} [{}]{links}, {} time(s), last {}\n  Action: {}",
            switch_name(g),
            g.sxid,
            g.name,
            match (g.always_fatal, g.fatal) {
                (true, _) => "always fatal",
                (false, true) => "fatal",
                (false, false) => "non-fatal",
            },
            g.count,
            g.last_seen.as_deref().unwrap_or("?"),
            g.action
        );
    }
    if n.truncated {
        let _ = write!(
            s,
            "\n({} SXid groups listed; narrow `since` to see the rest.)",
            n.groups.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ev(sxid: u32, fatal: Option<bool>, secs: Option<u64>, link: u32) -> SxidEvent {
        SxidEvent {
            sxid,
            pci_bus_id: Some("0000:05:00.0".to_owned()),
            switch: Some("nvidia-nvswitch0".to_owned()),
            instance: Some(0),
            fatal,
            link: Some(link),
            message: format!("Link {link} x"),
            time: secs.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            uptime_us: None,
        }
    }

    #[test]
    fn groups_are_newest_first_counted_and_windowed() {
        let events = vec![
            ev(12028, Some(false), Some(10), 44),
            ev(12028, Some(false), Some(20), 45),
            ev(24007, Some(true), Some(30), 44),
            ev(20034, Some(true), None, 1),
        ];
        let all = sxid_errors(&events, None);
        assert_eq!((all.total_events, all.fatal_events), (4, 2));
        let since = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        let n = sxid_errors(&events, since);
        assert_eq!(
            (n.total_events, n.fatal_events),
            (3, 1),
            "no time: not recent"
        );
        assert_eq!(n.groups[0].sxid, 24007);
        assert_eq!(n.groups[1].count, 2);
        assert_eq!(n.groups[1].links, vec![44, 45]);
        assert!(sentence(&n).contains("Fatal: SXid 24007"));
    }

    #[test]
    fn groups_are_bounded() {
        let events: Vec<SxidEvent> = (0..100)
            .map(|i| ev(30_000 + i, Some(false), Some(u64::from(i)), i))
            .collect();
        let n = sxid_errors(&events, None);
        assert_eq!(n.total_events, 100);
        assert_eq!(n.groups.len(), MAX_SXID_GROUPS);
        assert!(n.truncated);
        assert_eq!(n.groups[0].sxid, 30_099);
    }
}
