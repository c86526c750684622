//! `get_gpu_inventory`: the compact inventory of the selected GPUs, with the owners of the
//! processes and MIG devices it names.

use std::collections::BTreeMap;

use gpu_mcp_model::args::InventoryArgs;
use gpu_mcp_model::output::*;
use gpu_mcp_model::{GpuSnapshot, PodRef};
use gpu_mcp_protocol::CallToolResult;

use crate::catalog::{AgentCatalog, select_gpus};
use crate::owners::{Attribution, Query, gpu_queries};
use crate::text;

impl AgentCatalog {
    /// Runs `get_gpu_inventory`.
    pub(crate) async fn inventory(&self, args: InventoryArgs) -> CallToolResult {
        let snap = match self.backend().snapshot().await {
            Ok(s) => {
                self.log().snapshot(Ok(&s));
                s
            }
            Err(e) => {
                self.log().snapshot(Err(&e.to_string()));
                return CallToolResult::error(format!("Cannot read the GPUs: {e}"));
            }
        };
        let keep: Vec<u32> = match select_gpus(&snap.gpus, args.gpu_index, args.gpu_uuid.as_deref())
        {
            Ok(g) => g.into_iter().map(|g| g.index).collect(),
            Err(e) => return e,
        };
        let gpu_count = snap.gpus.len() as u32;
        let sections: Vec<InventorySection> = match (&args.sections, args.full) {
            (Some(list), _) => {
                let mut l = list.clone();
                l.sort_unstable();
                l.dedup();
                l
            }
            (None, true) => InventorySection::ALL.to_vec(),
            (None, false) => InventorySection::DEFAULT.to_vec(),
        };
        // The text is written from the snapshot before its GPUs move into the compact form.
        let text = text::inventory(&self.config().node_name, &snap, &keep);
        // Owners of the processes the answer names (and of its MIG devices), looked up only
        // when those sections are asked for.
        let named = |g: &&GpuSnapshot| {
            keep.contains(&g.index)
                && (sections.contains(&InventorySection::Processes)
                    || sections.contains(&InventorySection::Mig)
                        && g.mig.enabled.get() == Some(true))
        };
        let queries: Vec<Query> = snap
            .gpus
            .iter()
            .filter(named)
            .flat_map(gpu_queries)
            .collect();
        let attribution = if snap.gpus.iter().any(|g| named(&g)) {
            Some(
                self.sources()
                    .attribute(self.backend().as_ref(), Some(&snap), &queries)
                    .await,
            )
        } else {
            None
        };
        let mut unavailable = std::collections::BTreeMap::new();
        let node_field =
            |r: gpu_mcp_model::Reading<String>,
             key: &str,
             u: &mut std::collections::BTreeMap<String, String>| match r {
                gpu_mcp_model::Reading::Value(v) => Some(v),
                gpu_mcp_model::Reading::NotSupported => {
                    u.insert(key.to_owned(), "not_supported".to_owned());
                    None
                }
                gpu_mcp_model::Reading::Error(e) => {
                    u.insert(key.to_owned(), e);
                    None
                }
            };
        let driver_version = node_field(snap.driver_version, "driver_version", &mut unavailable);
        let cuda_driver_version = node_field(
            snap.cuda_driver_version,
            "cuda_driver_version",
            &mut unavailable,
        );
        let nvml_version = node_field(snap.nvml_version, "nvml_version", &mut unavailable);
        // The snapshot is ours: move the selected GPUs instead of copying them.
        let mut gpus: Vec<GpuInventory> = snap
            .gpus
            .into_iter()
            .filter(|g| keep.contains(&g.index))
            .map(|g| GpuInventory::from_snapshot(g, &sections, args.full))
            .collect();
        if let Some(a) = &attribution {
            name_owners(&mut gpus, &queries, a);
        }
        let left_out: Vec<&str> = InventorySection::ALL
            .iter()
            .filter(|s| !sections.contains(s))
            .map(|s| s.as_str())
            .collect();
        let more = (!left_out.is_empty() || !args.full).then(|| {
            let mut m = String::new();
            if !left_out.is_empty() {
                m = format!(
                    "Sections left out: {}; ask for them with `sections`. ",
                    left_out.join(", ")
                );
            }
            if !args.full {
                m.push_str("Clean NVLink links are counted, not listed; `full: true` lists every link and section.");
            }
            m.trim_end().to_owned()
        });
        let inv = Inventory {
            node: self.config().node_name.clone(),
            backend: snap.backend,
            driver_version,
            cuda_driver_version,
            nvml_version,
            unavailable,
            gpu_count,
            sections,
            full: args.full,
            gpus,
            more,
        };
        CallToolResult::structured_encoded(&inv, text)
    }
}

/// Writes the names and pods of an attribution of `queries` into the inventory's processes and
/// MIG devices.
fn name_owners(gpus: &mut [GpuInventory], queries: &[Query], a: &Attribution) {
    let found: BTreeMap<(u32, u32), (Option<String>, Option<PodRef>)> = queries
        .iter()
        .zip(a.owners.iter().zip(&a.names))
        .filter_map(|(q, (o, n))| Some(((q.gpu_index?, q.pid), (n.clone(), o.pod.clone()))))
        .collect();
    for g in gpus {
        for p in g.processes.iter_mut().flatten() {
            if let Some((name, pod)) = found.get(&(g.index, p.pid)) {
                p.name.clone_from(name);
                p.pod.clone_from(pod);
            }
        }
        for m in g.mig.iter_mut().flat_map(|m| m.instances.iter_mut()) {
            if let Some(u) = &m.uuid {
                m.pods = a.holders(u);
            }
        }
    }
}
