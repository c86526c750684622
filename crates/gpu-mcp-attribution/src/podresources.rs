//! A client of the kubelet's pod-resources API over its unix socket.

use crate::proto::pod_resources_lister_client::PodResourcesListerClient;
use crate::proto::{ListPodResourcesRequest, ListPodResourcesResponse};
use crate::{AttributionSource, Error, PodRef, Result};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Endpoint, Uri};

/// Where the kubelet serves the API.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The most a `List` answer may be (a node with hundreds of pods stays far below).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Whether a device-plugin resource name is an NVIDIA GPU or MIG device
/// (`nvidia.com/gpu`, `nvidia.com/gpu.shared`, `nvidia.com/mig-1g.10gb`, ...).
pub fn is_gpu_resource(resource_name: &str) -> bool {
    resource_name
        .strip_prefix("nvidia.com/")
        .is_some_and(|r| r == "gpu" || r.starts_with("gpu.") || r.starts_with("mig-"))
}

/// Which containers were allocated which GPU device, keyed by device id.
///
/// Device ids are what the device plugin advertised: GPU UUIDs (`GPU-…`), MIG device UUIDs
/// (`MIG-…`) or, with the plugin's index strategy, GPU indexes (`"0"`). A time-sliced replica
/// (`GPU-…::3`) is filed under its GPU's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAllocations {
    by_device: BTreeMap<String, Vec<PodRef>>,
    source: AttributionSource,
}

impl Default for DeviceAllocations {
    fn default() -> Self {
        Self {
            by_device: BTreeMap::new(),
            source: AttributionSource::PodResources,
        }
    }
}

impl DeviceAllocations {
    /// Who said so: [`AttributionSource::PodResources`] for a kubelet's answer.
    pub fn source(&self) -> AttributionSource {
        self.source
    }

    /// Allocations that did not come from a kubelet (the mock fleet's own), filed the same way
    /// and named by `source`.
    pub fn from_holders<'a>(
        source: AttributionSource,
        holders: impl IntoIterator<Item = (&'a str, PodRef)>,
    ) -> Self {
        let mut by_device: BTreeMap<String, Vec<PodRef>> = BTreeMap::new();
        for (id, holder) in holders {
            let entry = by_device.entry(id.to_owned()).or_default();
            if !entry.contains(&holder) {
                entry.push(holder);
            }
        }
        for holders in by_device.values_mut() {
            holders.sort();
        }
        Self { by_device, source }
    }

    /// The containers holding `device_id` (empty when none does).
    pub fn holders(&self, device_id: &str) -> &[PodRef] {
        self.by_device
            .get(device_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every allocated device id with its holders, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[PodRef])> {
        self.by_device
            .iter()
            .map(|(id, pods)| (id.as_str(), pods.as_slice()))
    }

    /// How many distinct devices are allocated.
    pub fn len(&self) -> usize {
        self.by_device.len()
    }

    /// Whether no GPU is allocated to any container.
    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }

    /// Files the GPU devices of one `List` answer.
    pub fn from_list(response: &crate::proto::ListPodResourcesResponse) -> Self {
        let mut by_device: BTreeMap<String, Vec<PodRef>> = BTreeMap::new();
        for pod in &response.pod_resources {
            for container in &pod.containers {
                let holder = PodRef {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    container: container.name.clone(),
                };
                let ids = container
                    .devices
                    .iter()
                    .filter(|d| is_gpu_resource(&d.resource_name))
                    .flat_map(|d| d.device_ids.iter());
                for id in ids {
                    let gpu = id
                        .split_once("::")
                        .map_or(id.as_str(), |(gpu, _replica)| gpu);
                    let holders = by_device.entry(gpu.to_owned()).or_default();
                    if !holders.contains(&holder) {
                        holders.push(holder.clone());
                    }
                }
            }
        }
        for holders in by_device.values_mut() {
            holders.sort();
        }
        Self {
            by_device,
            source: AttributionSource::PodResources,
        }
    }
}

/// Asks the kubelet which pod holds which GPU.
#[derive(Debug, Clone)]
pub struct PodResourcesClient {
    socket: PathBuf,
    deadline: Duration,
}

impl PodResourcesClient {
    /// A client of the socket at `socket`; every call (connect included) ends within `deadline`.
    pub fn new(socket: impl Into<PathBuf>, deadline: Duration) -> Self {
        Self {
            socket: socket.into(),
            deadline,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The deadline of every call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The GPU allocations of every running container on the node (`List`).
    pub async fn gpu_allocations(&self) -> Result<DeviceAllocations> {
        Ok(DeviceAllocations::from_list(&self.list().await?))
    }

    /// The kubelet's whole `List` answer, within the deadline.
    pub(crate) async fn list(&self) -> Result<ListPodResourcesResponse> {
        let call = async {
            let mut client = self.connect().await?;
            let response = client
                .list(ListPodResourcesRequest {})
                .await
                .map_err(|status| Error::Rpc {
                    rpc: "List",
                    status: Box::new(status),
                })?;
            Ok(response.into_inner())
        };
        tokio::time::timeout(self.deadline, call)
            .await
            .map_err(|_| Error::Deadline {
                what: "the kubelet pod-resources API",
                after: self.deadline,
            })?
    }

    async fn connect(&self) -> Result<PodResourcesListerClient<tonic::transport::Channel>> {
        let socket = self.socket.clone();
        // The URI is a placeholder: the connector below ignores it and dials the socket.
        let channel = Endpoint::from_static("http://kubelet.invalid")
            .connect_timeout(self.deadline)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    tokio::net::UnixStream::connect(socket)
                        .await
                        .map(TokioIo::new)
                }
            }))
            .await
            .map_err(|source| Error::Connect {
                path: self.socket.clone(),
                source,
            })?;
        Ok(PodResourcesListerClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_resource_names() {
        for yes in [
            "nvidia.com/gpu",
            "nvidia.com/gpu.shared",
            "nvidia.com/mig-1g.10gb",
            "nvidia.com/mig-3g.40gb",
        ] {
            assert!(is_gpu_resource(yes), "{yes}");
        }
        for no in [
            "nvidia.com/gpux",
            "amd.com/gpu",
            "cpu",
            "nvidia.com/",
            "example.com/gpu",
        ] {
            assert!(!is_gpu_resource(no), "{no}");
        }
    }
}
