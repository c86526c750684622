//! The GPU tools' names and MCP definitions, shared by the agent (which runs them) and the
//! gateway (which serves them with an extra `node` argument).

use gpu_mcp_protocol::{Tool, tool_definition};

use crate::args::{HealthArgs, InventoryArgs, XidArgs};
use crate::output::{HealthReport, Inventory, XidReport};
use crate::portable::{strip_nonstandard_formats, strip_nullable};
use crate::processes::{GpuProcessesArgs, GpuProcessesReport};
use crate::topology::{TopologyArgs, TopologyReport};

/// Name of the inventory tool.
pub const GET_GPU_INVENTORY: &str = "get_gpu_inventory";
/// Name of the health tool.
pub const GET_GPU_HEALTH: &str = "get_gpu_health";
/// Name of the Xid analysis tool.
pub const ANALYZE_XID_ERRORS: &str = "analyze_xid_errors";
/// Name of the GPU processes tool.
pub const GET_GPU_PROCESSES: &str = "get_gpu_processes";
/// Name of the gateway's node listing (a gateway tool; named here for toolsets and prompts).
pub const LIST_GPU_NODES: &str = "list_gpu_nodes";
/// Name of the gateway's node description (a gateway tool; named here for toolsets).
pub const DESCRIBE_GPU_NODE: &str = "describe_gpu_node";
/// Name of the gateway's pod allocation tool (a gateway tool; named here for toolsets).
pub const GET_POD_GPU_ALLOCATION: &str = "get_pod_gpu_allocation";
/// Name of the gateway's pod-failure triage (a gateway tool; named here for toolsets).
pub const EXPLAIN_POD_GPU_FAILURE: &str = "explain_pod_gpu_failure";
/// Name of the topology tool (the name upstream users know).
pub const GET_NVLINK_TOPOLOGY: &str = "get_nvlink_topology";

/// The agent's GPU tools, without a backend (the gateway extends these with a `node` argument).
///
/// Their schemas are portable (see [`crate::portable`]): no nullable input properties and no
/// non-standard `format` values.
pub fn gpu_tool_definitions() -> Vec<Tool> {
    let mut tools = vec![
        tool_definition::<InventoryArgs, Inventory>(
            GET_GPU_INVENTORY,
            "GPU inventory",
            "Lists the node's NVIDIA GPUs with their identity (name, UUID, serial, PCI bus id, architecture, VBIOS), \
             the driver and CUDA versions, and current state: memory and BAR1 use, utilisation, temperatures with the \
             device's slowdown and shutdown thresholds, power draw and limits, clocks and clock-event (throttle) reasons, \
             ECC mode and error counts, retired pages, row remapping, PCIe link and replays, NVLink links and errors, \
             persistence, compute and MIG mode, and the processes using each GPU. Values are plain; what a GPU could not report \
             is listed once per GPU under `unavailable` with the reason. The default answer is compact: identity, memory, \
             thermal, power, ECC, PCIe and NVLink, with clean NVLink links and ECC counters folded into counts; ask for \
             `sections` (clocks, processes, mig, ...) or `full: true` for every section and link.",
        ),
        tool_definition::<HealthArgs, HealthReport>(
            GET_GPU_HEALTH,
            "GPU health verdict",
            "Judges every GPU on the node healthy, warning, degraded or critical, with every reason: the check, \
             the observed value, the threshold (from the device where it reports one) and what to do. Recent Xid \
             errors from the kernel log and from events recorded since the agent started count toward the verdict. \
             Use it to answer \"is this node's GPU healthy, and if not, what do I do?\".",
        ),
        tool_definition::<XidArgs, XidReport>(
            ANALYZE_XID_ERRORS,
            "Xid error analysis",
            "Finds NVIDIA Xid errors in the kernel log (/dev/kmsg) and among events recorded since the agent \
             started, maps each to its GPU, explains it from the Xid catalog (name, category, severity, recommended \
             action) and groups them per GPU and code with counts and first/last seen. Unknown codes are reported as \
             unknown. Filter by time window (since), GPU, and limit the listed events.",
        ),
        tool_definition::<GpuProcessesArgs, GpuProcessesReport>(
            GET_GPU_PROCESSES,
            "GPU processes and their pods",
            "Lists the processes on the node's GPUs (compute, graphics and MPS clients, per GPU and per MIG \
             instance) with pid, name and GPU memory, each attributed to its Kubernetes namespace, pod and \
             container, and every GPU or MIG device the kubelet allocated to a container with that GPU's \
             health verdict. Attribution comes from the kubelet's pod-resources API and each process's \
             cgroup; `attribution` says which source answered and why one could not. Use it to answer \
             \"which pod is on this GPU?\" (before draining or resetting a sick GPU) or \"which GPUs does \
             this pod hold?\". Biggest GPU memory first, at most `limit` processes (counts include all); \
             filter by GPU (index, or GPU or MIG UUID), namespace or pod.",
        ),
        tool_definition::<TopologyArgs, TopologyReport>(
            GET_NVLINK_TOPOLOGY,
            "GPU interconnect topology",
            "How the node's GPUs are wired, and whether the wiring is healthy: the GPU-to-GPU matrix as \
             `nvidia-smi topo -m` prints it (NV# bonded NVLinks, PIX, PXB, PHB, NODE, SYS) with each GPU's NUMA node \
             and CPU affinity, peer-to-peer read/write status per pair, each GPU's NVLink links (up, down, disabled, \
             where they go: another GPU or an NVSwitch) with errors since the previous reading, and the NVSwitch \
             fabric registration per GPU (state, status, clique). A verdict with findings (links down or erroring, \
             fabric manager not done on an NVSwitch system, P2P not working between NVLink peers), each with the \
             observed value, threshold and action. Use it for \"why is multi-GPU training slow or failing to \
             start on this node?\" and before placing NCCL jobs; `full: true` lists every link and pair.",
        ),
    ];
    for t in &mut tools {
        make_portable(t);
    }
    tools
}

/// Applies [`crate::portable`] to a tool's schemas.
fn make_portable(tool: &mut Tool) {
    let mut input = serde_json::Value::Object(std::mem::take(&mut tool.input_schema));
    strip_nullable(&mut input);
    strip_nonstandard_formats(&mut input);
    if let serde_json::Value::Object(o) = input {
        tool.input_schema = o;
    }
    if let Some(out) = tool.output_schema.take() {
        let mut out = serde_json::Value::Object(out);
        strip_nonstandard_formats(&mut out);
        if let serde_json::Value::Object(o) = out {
            tool.output_schema = Some(o);
        }
    }
}
