//! Per-GPU facts (NUMA, CPUs, links, fabric) and per-pair facts.

use std::collections::BTreeMap;

use gpu_mcp_model::topology::{GpuTopologyFacts, LinkFact, LinkState, LinkSummary, PairFacts};
use gpu_mcp_model::{GpuSnapshot, NvLink, Reading, RemoteKind};

use super::Pair;

/// The name of a link's far end: `NVSwitch 0000:05:00.0`, `GPU3`, `CPU`.
fn remote_name(l: &NvLink, gpus: &[GpuSnapshot]) -> Option<String> {
    let r = l.remote.value()?;
    let gpu_of = |bus: &str| {
        gpus.iter()
            .find(|g| g.pci_bus_id.value().is_some_and(|b| b == bus))
            .map(|g| g.index)
    };
    Some(match (r.kind, r.pci_bus_id.as_deref()) {
        (RemoteKind::Nvswitch, Some(bus)) => format!("NVSwitch {bus}"),
        (RemoteKind::Nvswitch, None) => "NVSwitch".to_owned(),
        (RemoteKind::Gpu, Some(bus)) => {
            gpu_of(bus).map_or_else(|| format!("GPU {bus}"), |i| format!("GPU{i}"))
        }
        (RemoteKind::Gpu, None) => "GPU".to_owned(),
        (RemoteKind::Cpu, _) => "CPU".to_owned(),
        (RemoteKind::Unknown, Some(bus)) => format!("device {bus}"),
        (RemoteKind::Unknown, None) => "unknown".to_owned(),
    })
}

/// Where a GPU's up links go, grouped: `NVSwitch`, `GPU1 x2, GPU3 x1`.
fn remote_summary(links: &[NvLink], gpus: &[GpuSnapshot]) -> String {
    let mut groups: BTreeMap<String, u32> = BTreeMap::new();
    for l in links.iter().filter(|l| l.active) {
        let name = remote_name(l, gpus).unwrap_or_else(|| "unknown".to_owned());
        let key = if name.starts_with("NVSwitch") {
            "NVSwitch".to_owned()
        } else {
            name
        };
        *groups.entry(key).or_default() += 1;
    }
    if groups.is_empty() {
        return "no link up".to_owned();
    }
    if groups.len() == 1 && groups.contains_key("NVSwitch") {
        return "NVSwitch".to_owned();
    }
    groups
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn links_summary(
    g: &GpuSnapshot,
    links: &[NvLink],
    gpus: &[GpuSnapshot],
    full: bool,
) -> LinkSummary {
    let state = |l: &NvLink| {
        if l.active {
            LinkState::Up
        } else if l.disabled {
            LinkState::Disabled
        } else {
            LinkState::Down
        }
    };
    let changes = g.since_previous.as_ref();
    let all_down = links.iter().all(|l| !l.active && !l.disabled);
    let mut s = LinkSummary {
        wired: links.len() as u32,
        remote: remote_summary(links, gpus),
        ..LinkSummary::default()
    };
    for l in links {
        match state(l) {
            LinkState::Up => s.up += 1,
            LinkState::Down => s.down += 1,
            LinkState::Disabled => s.disabled += 1,
        }
        let new = changes
            .and_then(|c| c.nvlink.iter().find(|x| x.link == l.link))
            .copied();
        let erroring = new.is_some_and(|c| {
            c.replay.unwrap_or(0) + c.recovery.unwrap_or(0) + c.crc.unwrap_or(0) > 0
        });
        // When every link is down the counts say it all; otherwise the down ones are named.
        let named_down = state(l) == LinkState::Down && !all_down;
        if !(full || named_down || erroring) {
            continue;
        }
        let total = {
            let n = |r: &Reading<u64>| r.get();
            let crc = n(&l.crc_flit_errors)
                .zip(n(&l.crc_data_errors))
                .map(|(a, b)| a + b)
                .or_else(|| n(&l.crc_flit_errors))
                .or_else(|| n(&l.crc_data_errors));
            match (crc, n(&l.replay_errors), n(&l.recovery_errors)) {
                (None, None, None) => None,
                (c, r, rec) => {
                    let f = |x: Option<u64>| x.map_or_else(|| "?".to_owned(), |v| v.to_string());
                    Some(format!(
                        "{} CRC, {} replay, {} recovery",
                        f(c),
                        f(r),
                        f(rec)
                    ))
                }
            }
        };
        s.links.push(LinkFact {
            link: l.link,
            state: state(l),
            remote: remote_name(l, gpus),
            errors_total: total,
            new_errors: new,
        });
    }
    s
}

pub(super) fn facts(g: &GpuSnapshot, gpus: &[GpuSnapshot], full: bool) -> GpuTopologyFacts {
    let mut unavailable = BTreeMap::new();
    let mut take = |key: &str, why: Option<String>| {
        if let Some(w) = why {
            unavailable.insert(key.to_owned(), w);
        }
    };
    let why = |r: Reading<()>| match r {
        Reading::Value(()) => None,
        Reading::NotSupported => Some("not_supported".to_owned()),
        Reading::Error(e) => Some(e),
    };
    let t = &g.topology;
    take("numa_node", why(t.numa_node.as_ref().map(|_| ())));
    take("cpu_affinity", why(t.cpu_affinity.as_ref().map(|_| ())));
    take("peers", why(t.peers.as_ref().map(|_| ())));
    if let Reading::Error(e) = &t.fabric {
        take("fabric", Some(e.clone()));
    }
    if let Reading::Error(e) = &g.nvlink {
        take("nvlink", Some(e.clone()));
    }
    GpuTopologyFacts {
        index: g.index,
        uuid: g.uuid.value().cloned(),
        pci_bus_id: g.pci_bus_id.value().cloned(),
        numa_node: t.numa_node.get(),
        cpu_affinity: t.cpu_affinity.value().cloned(),
        nvlink: g
            .nvlink
            .value()
            .filter(|l| !l.is_empty())
            .map(|l| links_summary(g, l, gpus, full)),
        fabric: t.fabric.value().cloned(),
        unavailable,
    }
}

pub(super) fn pair_facts(p: &Pair<'_>) -> PairFacts {
    PairFacts {
        gpu: p.a.index,
        peer: p.b.index,
        link: p.word(),
        nvlinks: p.nvlinks.unwrap_or(0),
        pci_level: p.path.and_then(|x| x.pci_level.get()),
        p2p_read: p.path.and_then(|x| x.p2p_read.get()),
        p2p_write: p.path.and_then(|x| x.p2p_write.get()),
        p2p_nvlink: p.path.and_then(|x| x.p2p_nvlink.get()),
    }
}
