//! The GPU resources: URIs under `gpu://{node}/...` that name one node's (or one GPU's) full
//! answer, for a client to read on request instead of calling a tool again.
//!
//! | Template | What it reads |
//! |---|---|
//! | `gpu://{node}/inventory` | `get_gpu_inventory` with every section and link (`full: true`) |
//! | `gpu://{node}/health` | `get_gpu_health` with its default Xid window |
//! | `gpu://{node}/xids` | `analyze_xid_errors` with its defaults |
//! | `gpu://{node}/processes` | `get_gpu_processes` with every process (`limit: 1000`) |
//! | `gpu://{node}/topology` | `get_nvlink_topology` with every link and pair (`full: true`) |
//! | `gpu://{node}/gpu/{index}/inventory` | `get_gpu_inventory` of GPU `index`, `full: true` |
//!
//! Each resource is read through its tool ([`GpuResource::tool`], [`GpuResource::arguments`]), so
//! its contents are exactly that tool's structured result and a server offers a resource only
//! where it offers the tool. The agent and the gateway share these templates; the node is checked
//! by whoever serves it (the agent: its own name; the gateway: the node-name rule and discovery).

use gpu_mcp_protocol::JsonObject;
use gpu_mcp_protocol::mcp::{Resource, ResourceTemplate};
use serde_json::Value;

use crate::definitions::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
};
use crate::processes::MAX_PROCESS_LIMIT;

/// The URI scheme of the GPU resources.
pub const SCHEME: &str = "gpu://";
/// The template variable naming a node.
pub const VAR_NODE: &str = "node";
/// The template variable naming a GPU index.
pub const VAR_INDEX: &str = "index";
/// The MIME type of every GPU resource: the tool's structured result as JSON.
pub const MIME_JSON: &str = "application/json";

/// Most characters of a client's URI an error message repeats.
const SHOWN_CHARS: usize = 160;

/// `text` (a URI or part of one, as a client sent it) for an error message: escaped, in quotes,
/// and cut after [`SHOWN_CHARS`] characters.
pub fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(SHOWN_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// What a GPU resource holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceKind {
    /// The node's full inventory.
    Inventory,
    /// The node's health report.
    Health,
    /// The node's Xid analysis.
    Xids,
    /// Every process on the node's GPUs with its pod.
    Processes,
    /// How the node's GPUs are wired, every link and pair.
    Topology,
    /// One GPU's full inventory.
    GpuInventory,
}

impl ResourceKind {
    /// The node-wide kinds (one resource per node each), in the order they are listed.
    pub const NODE: [ResourceKind; 5] = [
        Self::Health,
        Self::Inventory,
        Self::Xids,
        Self::Processes,
        Self::Topology,
    ];

    /// Every kind, in the order the templates are listed.
    pub const ALL: [ResourceKind; 6] = [
        Self::Inventory,
        Self::Health,
        Self::Xids,
        Self::Processes,
        Self::Topology,
        Self::GpuInventory,
    ];

    /// The URI template.
    pub fn uri_template(self) -> &'static str {
        match self {
            Self::Inventory => "gpu://{node}/inventory",
            Self::Health => "gpu://{node}/health",
            Self::Xids => "gpu://{node}/xids",
            Self::Processes => "gpu://{node}/processes",
            Self::Topology => "gpu://{node}/topology",
            Self::GpuInventory => "gpu://{node}/gpu/{index}/inventory",
        }
    }

    /// The last path segment of the URI (`inventory` for both inventories).
    fn segment(self) -> &'static str {
        match self {
            Self::Inventory | Self::GpuInventory => "inventory",
            Self::Health => "health",
            Self::Xids => "xids",
            Self::Processes => "processes",
            Self::Topology => "topology",
        }
    }

    /// The tool the resource is read through.
    pub fn tool(self) -> &'static str {
        match self {
            Self::Inventory | Self::GpuInventory => GET_GPU_INVENTORY,
            Self::Health => GET_GPU_HEALTH,
            Self::Xids => ANALYZE_XID_ERRORS,
            Self::Processes => GET_GPU_PROCESSES,
            Self::Topology => GET_NVLINK_TOPOLOGY,
        }
    }

    /// The kind of the node-wide resource that holds `tool`'s full answer, if there is one.
    pub fn of_tool(tool: &str) -> Option<Self> {
        Self::NODE.into_iter().find(|k| k.tool() == tool)
    }

    /// Whether the template has the `index` variable.
    pub fn takes_index(self) -> bool {
        self == Self::GpuInventory
    }

    /// The template's definition.
    pub fn template(self) -> ResourceTemplate {
        let (name, title, description) = match self {
            Self::Inventory => (
                "gpu-node-inventory",
                "Node GPU inventory (full)",
                "Every GPU of the node with every inventory section and every NVLink link: what get_gpu_inventory returns with full: true.",
            ),
            Self::Health => (
                "gpu-node-health",
                "Node GPU health",
                "The node's health report: every GPU's verdict with the reasons, observed values, thresholds and actions, as get_gpu_health returns it.",
            ),
            Self::Xids => (
                "gpu-node-xids",
                "Node Xid errors",
                "The node's Xid errors grouped per GPU and code, explained from the Xid catalog, as analyze_xid_errors returns it.",
            ),
            Self::Processes => (
                "gpu-node-processes",
                "Node GPU processes",
                "Every process on the node's GPUs with its used memory and its pod, as get_gpu_processes returns it with limit 1000.",
            ),
            Self::Topology => (
                "gpu-node-topology",
                "Node GPU topology (full)",
                "How the node's GPUs are wired: the nvidia-smi topo -m matrix, every NVLink link with its counters and every pair's PCIe level and peer-to-peer status, as get_nvlink_topology returns it with full: true.",
            ),
            Self::GpuInventory => (
                "gpu-inventory",
                "One GPU's inventory (full)",
                "One GPU (by index) with every inventory section and link: get_gpu_inventory with gpu_index and full: true.",
            ),
        };
        ResourceTemplate {
            uri_template: self.uri_template().to_owned(),
            name: name.to_owned(),
            title: Some(title.to_owned()),
            description: Some(description.to_owned()),
            mime_type: Some(MIME_JSON.to_owned()),
        }
    }
}

/// One GPU resource: a node, what it holds, and for a GPU's resource its index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GpuResource {
    /// The node, as written in the URI (not yet checked against any rule).
    pub node: String,
    /// What the resource holds.
    pub kind: ResourceKind,
    /// The GPU index of a [`ResourceKind::GpuInventory`].
    pub index: Option<u32>,
}

impl GpuResource {
    /// The node-wide resource of `kind` (`kind` must not take an index) on `node`.
    pub fn node(node: impl Into<String>, kind: ResourceKind) -> Self {
        Self {
            node: node.into(),
            kind,
            index: None,
        }
    }

    /// The inventory of GPU `index` on `node`.
    pub fn gpu(node: impl Into<String>, index: u32) -> Self {
        Self {
            node: node.into(),
            kind: ResourceKind::GpuInventory,
            index: Some(index),
        }
    }

    /// Reads a URI; `Err` says why it names no GPU resource, for a not-found error.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let unknown = || {
            format!(
                "{} is not a GPU resource; the templates are {}.",
                shown(uri),
                ResourceKind::ALL.map(ResourceKind::uri_template).join(", ")
            )
        };
        let rest = uri.strip_prefix(SCHEME).ok_or_else(unknown)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (node, kind, index) = match parts.as_slice() {
            [node, segment] => {
                let kind = ResourceKind::NODE
                    .into_iter()
                    .find(|k| k.segment() == *segment)
                    .ok_or_else(unknown)?;
                (*node, kind, None)
            }
            [node, "gpu", index, "inventory"] => {
                let parsed = (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| index.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "{}: the GPU index {} is not a number like 0 or 7.",
                            shown(uri),
                            shown(index)
                        )
                    })?;
                (*node, ResourceKind::GpuInventory, Some(parsed))
            }
            _ => return Err(unknown()),
        };
        if node.is_empty() {
            return Err(format!("{} names no node.", shown(uri)));
        }
        Ok(Self {
            node: node.to_owned(),
            kind,
            index,
        })
    }

    /// The URI.
    pub fn uri(&self) -> String {
        match (self.kind, self.index) {
            (ResourceKind::GpuInventory, Some(i)) => {
                format!("{SCHEME}{}/gpu/{i}/inventory", self.node)
            }
            (kind, _) => format!("{SCHEME}{}/{}", self.node, kind.segment()),
        }
    }

    /// The tool the resource is read through.
    pub fn tool(&self) -> &'static str {
        self.kind.tool()
    }

    /// The arguments of that tool call.
    pub fn arguments(&self) -> Option<JsonObject> {
        let mut args = JsonObject::new();
        match self.kind {
            ResourceKind::Inventory | ResourceKind::Topology => {
                args.insert("full".into(), Value::Bool(true));
            }
            ResourceKind::Processes => {
                args.insert("limit".into(), Value::from(MAX_PROCESS_LIMIT));
            }
            ResourceKind::GpuInventory => {
                args.insert("full".into(), Value::Bool(true));
                if let Some(i) = self.index {
                    args.insert("gpu_index".into(), Value::from(i));
                }
            }
            ResourceKind::Health | ResourceKind::Xids => return None,
        }
        Some(args)
    }

    /// The resource's listing entry.
    pub fn listing(&self) -> Resource {
        let (name, description) = match (self.kind, self.index) {
            (ResourceKind::GpuInventory, Some(i)) => (
                format!("{} GPU {i} inventory", self.node),
                format!(
                    "GPU {i} of {}: every inventory section and link.",
                    self.node
                ),
            ),
            (ResourceKind::Inventory | ResourceKind::GpuInventory, _) => (
                format!("{} inventory", self.node),
                format!(
                    "Every GPU of {} with every inventory section and link.",
                    self.node
                ),
            ),
            (ResourceKind::Health, _) => (
                format!("{} health", self.node),
                format!(
                    "The health report of {}: every GPU's verdict with reasons and actions.",
                    self.node
                ),
            ),
            (ResourceKind::Xids, _) => (
                format!("{} Xid errors", self.node),
                format!("The Xid errors of {}, grouped and explained.", self.node),
            ),
            (ResourceKind::Processes, _) => (
                format!("{} GPU processes", self.node),
                format!(
                    "Every process on the GPUs of {} with its memory and its pod.",
                    self.node
                ),
            ),
            (ResourceKind::Topology, _) => (
                format!("{} GPU topology", self.node),
                format!(
                    "How the GPUs of {} are wired: the topology matrix, every link and pair.",
                    self.node
                ),
            ),
        };
        Resource {
            uri: self.uri(),
            name,
            title: None,
            description: Some(description),
            mime_type: Some(MIME_JSON.to_owned()),
        }
    }
}

/// The templates whose tool is among `tools` (a server offers a resource only where it offers
/// the tool that reads it).
pub fn resource_templates<'a>(tools: impl IntoIterator<Item = &'a str>) -> Vec<ResourceTemplate> {
    let tools: Vec<&str> = tools.into_iter().collect();
    ResourceKind::ALL
        .into_iter()
        .filter(|k| tools.contains(&k.tool()))
        .map(ResourceKind::template)
        .collect()
}

/// The kind whose URI template is `template`.
pub fn template_kind(template: &str) -> Option<ResourceKind> {
    ResourceKind::ALL
        .into_iter()
        .find(|k| k.uri_template() == template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_round_trip_and_name_their_tool_call() {
        for r in [
            GpuResource::node("gpu-node-1", ResourceKind::Inventory),
            GpuResource::node("gpu-node-1", ResourceKind::Health),
            GpuResource::node("gpu-node-1.example.com", ResourceKind::Xids),
            GpuResource::gpu("gpu-node-1", 7),
        ] {
            assert_eq!(GpuResource::parse(&r.uri()), Ok(r.clone()));
            assert_eq!(r.listing().uri, r.uri());
        }
        let gpu = GpuResource::parse("gpu://n/gpu/3/inventory").unwrap();
        assert_eq!(gpu.tool(), GET_GPU_INVENTORY);
        assert_eq!(
            Value::Object(gpu.arguments().unwrap()),
            json!({"full": true, "gpu_index": 3})
        );
        assert_eq!(
            GpuResource::parse("gpu://n/health").unwrap().arguments(),
            None
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for bad in [
            "gpu://n",
            "gpu:///health",
            "gpu://n/health/",
            "gpu://n/gpu/x/inventory",
            "gpu://n/gpu/-1/inventory",
            "gpu://n/gpu/99999999999/inventory",
            "gpu://n/gpu//inventory",
            "http://n/health",
            "",
        ] {
            assert!(GpuResource::parse(bad).is_err(), "{bad}");
        }
        let e = GpuResource::parse("file:///etc/passwd").unwrap_err();
        assert!(e.contains("gpu://{node}/inventory"), "{e}");
        let long = format!("gpu://{}/fans", "n".repeat(10_000));
        let e = GpuResource::parse(&long).unwrap_err();
        assert!(e.len() < 600 && e.contains('…'), "{e}");
        assert_eq!(shown("a\nb"), r#""a\nb""#);
    }

    #[test]
    fn templates_follow_the_tools_offered() {
        let all = resource_templates([GET_GPU_INVENTORY, GET_GPU_HEALTH, ANALYZE_XID_ERRORS]);
        assert_eq!(all.len(), 4);
        let health = resource_templates([GET_GPU_HEALTH]);
        assert_eq!(health.len(), 1);
        assert_eq!(health[0].uri_template, "gpu://{node}/health");
        assert_eq!(
            template_kind("gpu://{node}/gpu/{index}/inventory"),
            Some(ResourceKind::GpuInventory)
        );
        assert!(ResourceKind::GpuInventory.takes_index());
        assert_eq!(
            ResourceKind::of_tool(GET_GPU_HEALTH),
            Some(ResourceKind::Health)
        );
    }
}
