//! [`MockBackend`]: the simulated fleet behind the [`GpuBackend`] trait.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use gpu_mcp_model::xid::SxidEvent;
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, PodRef, XidEvent};

use super::fleet::{build_gpu, v};
use super::profile::MockConfig;
use super::topology::wire;
use crate::Result;
use crate::backend::{FleetAllocations, GpuBackend};

/// The namespace of the mock fleet's simulated training pods.
pub const MOCK_NAMESPACE: &str = "ml-training";
/// The container of each simulated training pod.
pub const MOCK_CONTAINER: &str = "worker";
/// The name every simulated GPU process has.
const MOCK_PROCESS_NAME: &str = "python3";

/// The simulated backend.
#[derive(Debug, Clone)]
pub struct MockBackend {
    node: NodeSnapshot,
    events: Vec<XidEvent>,
    sxids: Vec<SxidEvent>,
    config: MockConfig,
    allocations: FleetAllocations,
}

/// The simulated pod that holds GPU `index` of `node` (all of its MIG devices when MIG is
/// enabled): `ml-training/{node}-job-{index}`, container `worker`.
pub fn mock_pod(node: &str, index: u32) -> PodRef {
    PodRef {
        namespace: MOCK_NAMESPACE.to_owned(),
        pod: format!("{node}-job-{index}"),
        container: MOCK_CONTAINER.to_owned(),
    }
}

/// One simulated pod per GPU, holding the GPU, or each of its MIG devices when MIG is enabled.
fn allocations(node: &NodeSnapshot, node_name: &str) -> FleetAllocations {
    let mut out = FleetAllocations::default();
    for g in &node.gpus {
        let holder = mock_pod(node_name, g.index);
        let migs: Vec<String> = g
            .mig
            .instances
            .value()
            .into_iter()
            .flatten()
            .filter_map(|m| m.uuid.value().cloned())
            .collect();
        if migs.is_empty() {
            if let Some(u) = g.uuid.value() {
                out.holders.push((u.clone(), holder));
            }
        } else {
            out.holders
                .extend(migs.into_iter().map(|m| (m, holder.clone())));
        }
        for p in g.processes.value().into_iter().flatten() {
            out.process_names
                .insert(p.pid, MOCK_PROCESS_NAME.to_owned());
        }
    }
    out
}

/// How long the simulated node has been up when the mock starts (its kernel-log times count
/// from `now - MOCK_UPTIME`).
pub const MOCK_UPTIME: Duration = Duration::from_secs(3 * 86_400 + 7_213);

impl MockBackend {
    /// Builds the fleet; fails on an invalid configuration.
    pub fn new(config: MockConfig) -> Result<MockBackend> {
        let layout = config.resolved_layout()?;
        let now = config.now.unwrap_or_else(SystemTime::now);
        let boot = now - MOCK_UPTIME;
        let mut gpus = Vec::with_capacity(layout.len());
        let mut events = Vec::new();
        let mut sxids = Vec::new();
        let count = layout.len() as u32;
        for (i, g) in layout.iter().enumerate() {
            let (gpu, mut evs, mut sx) =
                build_gpu(&config.node_name, (i as u32, count), *g, now, boot);
            gpus.push(gpu);
            events.append(&mut evs);
            sxids.append(&mut sx);
        }
        wire(&mut gpus, &layout);
        events.sort_by_key(|e| e.time);
        sxids.sort_by_key(|e| e.time);
        let node = NodeSnapshot {
            backend: BackendKind::Mock,
            driver_version: v(config.driver_version.clone()),
            cuda_driver_version: v(config.cuda_version.clone()),
            nvml_version: v(format!("12.{}", config.driver_version)),
            gpus,
        };
        let allocations = allocations(&node, &config.node_name);
        Ok(MockBackend {
            node,
            events,
            sxids,
            config,
            allocations,
        })
    }

    /// The configuration the fleet was built from.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// The scenario events as `/dev/kmsg` records (one per line, the Xid lines then the SXid
    /// lines), for feeding the kernel-log path.
    pub fn kernel_log(&self) -> String {
        let mut out = String::new();
        for (seq, e) in self.events.iter().enumerate() {
            // The driver prints the device without its function (`PCI:0000:18:00`).
            let pci = e.pci_bus_id.as_deref().unwrap_or("0000:00:00.0");
            let pci = pci.rsplit_once('.').map_or(pci, |(device, _)| device);
            let who = match (e.pid, &e.process_name) {
                (Some(p), Some(n)) => format!("pid={p}, name={n}, "),
                (Some(p), None) => format!("pid={p}, "),
                _ => "pid='<unknown>', name=<unknown>, ".to_owned(),
            };
            out.push_str(&format!(
                "3,{},{},-;NVRM: Xid (PCI:{pci}): {}, {who}{}\n",
                1000 + seq,
                e.uptime_us.unwrap_or(0),
                e.xid,
                e.message
            ));
        }
        for (seq, e) in self.sxids.iter().enumerate() {
            out.push_str(&format!(
                "3,{},{},-;{}: SXid (PCI:{}): {}, {}, {}\n",
                2000 + seq,
                e.uptime_us.unwrap_or(0),
                e.switch.as_deref().unwrap_or("nvidia-nvswitch0"),
                e.pci_bus_id.as_deref().unwrap_or("0000:00:00.0"),
                e.sxid,
                if e.fatal == Some(true) {
                    "Fatal"
                } else {
                    "Non-fatal"
                },
                e.message
            ));
        }
        out
    }
}

impl GpuBackend for MockBackend {
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
        Box::pin(async move { Ok(self.node.clone()) })
    }

    fn xid_events(&self) -> Vec<XidEvent> {
        self.events.clone()
    }

    fn xid_recorder_status(&self) -> EventRecorderStatus {
        EventRecorderStatus {
            active: true,
            detail: "mock backend: Xid events are simulated by the scenario".to_owned(),
            heartbeat: None,
        }
    }

    fn sxid_events(&self) -> Vec<SxidEvent> {
        self.sxids.clone()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Mock
    }

    fn fleet_allocations(&self) -> Option<FleetAllocations> {
        Some(self.allocations.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::Scenario;

    #[test]
    fn uuids_differ_between_nodes_and_are_stable() {
        let a = MockBackend::new(MockConfig {
            node_name: "node-a".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let a2 = MockBackend::new(MockConfig {
            node_name: "node-a".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let b = MockBackend::new(MockConfig {
            node_name: "node-b".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let ids = |m: &MockBackend| -> Vec<String> {
            m.node
                .gpus
                .iter()
                .map(|g| g.uuid.value().unwrap().clone())
                .collect()
        };
        assert_eq!(ids(&a), ids(&a2));
        let mut all = ids(&a);
        all.extend(ids(&b));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "UUIDs must be unique across nodes");
        assert!(
            all[0].starts_with("GPU-") && all[0].len() == 40,
            "{}",
            all[0]
        );
    }

    #[test]
    fn rejects_bad_configs() {
        let too_many = MockConfig {
            gpus: 65,
            ..MockConfig::default()
        };
        assert!(MockBackend::new(too_many).is_err());
        let bad_target = MockConfig {
            gpus: 2,
            affected_gpu: 2,
            ..MockConfig::default()
        };
        assert!(MockBackend::new(bad_target).is_err());
    }

    #[test]
    fn kernel_log_round_trips_through_the_parser() {
        let m = MockBackend::new(MockConfig {
            scenario: Scenario::XidEccFamily,
            ..MockConfig::default()
        })
        .unwrap();
        let parsed = gpu_mcp_model::xid::parse_kernel_log(m.kernel_log().as_bytes(), None);
        let codes: Vec<u32> = parsed.events.iter().map(|e| e.xid).collect();
        assert_eq!(codes, vec![48, 94, 48, 95]);
        assert_eq!(parsed.events[0].pci_bus_id.as_deref(), Some("0000:18:00.0"));
    }

    #[test]
    fn mig_instances_of_a_gpu_never_share_a_memory_slice() {
        for model in ["A100-SXM4-80GB", "H100-80GB-HBM3"] {
            let profile = format!(
                r#"{{"node_name":"n","gpus":[{{"model":"{model}","scenario":"mig-enabled"}}]}}"#
            );
            let m = MockBackend::new(MockConfig::from_profile_str(&profile).unwrap()).unwrap();
            let g = &m.node.gpus[0];
            let slots: Vec<(u32, u32)> = g
                .mig
                .instances
                .value()
                .unwrap()
                .iter()
                .map(|i| {
                    let p = i.placement.value().unwrap();
                    (p.start, p.start + p.size)
                })
                .collect();
            assert_eq!(slots.len(), 3, "{model}");
            for (a, x) in slots.iter().enumerate() {
                // An A100 or H100 has eight memory slices.
                assert!(x.0 < x.1 && x.1 <= 8, "{model}: {x:?}");
                for y in &slots[a + 1..] {
                    assert!(x.1 <= y.0 || y.1 <= x.0, "{model}: {x:?} overlaps {y:?}");
                }
            }
        }
    }
}
