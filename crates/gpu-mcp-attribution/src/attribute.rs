//! One owner per GPU process, from whichever sources answered.

use crate::{AttributionSource, CgroupLookup, DeviceAllocations, ProcessOwner};

/// A process on a GPU, as the GPU backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuProcessRef<'a> {
    /// Host pid.
    pub pid: u32,
    /// The device ids the process's GPU may be allocated under: its UUID, its MIG device UUID
    /// when the process runs in a MIG instance, and its index (the device plugin's index
    /// strategy). The first that has holders is used.
    pub device_ids: &'a [&'a str],
}

/// Combines the sources into one owner per process, in the order of `processes`.
///
/// `allocations` is the pod-resources answer when it was available (or the mock fleet's own,
/// which names itself as the source); `cgroups` holds one lookup
/// per process (same order) when the host's `/proc` is mounted. A GPU held by
/// one container names that container; a GPU held by several lists them as candidates (the
/// pod-resources API has no pod UIDs, so the cgroup cannot pick one); nothing is ever guessed.
pub fn attribute(
    processes: &[GpuProcessRef<'_>],
    allocations: Option<&DeviceAllocations>,
    cgroups: Option<&[CgroupLookup]>,
) -> Vec<ProcessOwner> {
    processes
        .iter()
        .enumerate()
        .map(|(i, process)| {
            let mut owner = ProcessOwner::default();
            let lookup = cgroups.and_then(|c| c.get(i));
            if let Some(allocations) = allocations {
                owner.sources.push(allocations.source());
                let holders = process
                    .device_ids
                    .iter()
                    .map(|id| allocations.holders(id))
                    .find(|h| !h.is_empty())
                    .unwrap_or_default();
                // A host process (no pod cgroup) on an allocated GPU is not that pod's.
                let host_process = matches!(lookup, Some(CgroupLookup::Host));
                match holders {
                    _ if host_process => {}
                    [one] => owner.pod = Some(one.clone()),
                    many => owner.candidates = many.to_vec(),
                }
            }
            if cgroups.is_some() {
                owner.sources.push(AttributionSource::Cgroup);
            }
            if let Some(CgroupLookup::Pod(identity)) = lookup {
                owner.pod_uid.clone_from(&identity.pod_uid);
                owner.container_id.clone_from(&identity.container_id);
            }
            owner
        })
        .collect()
}
