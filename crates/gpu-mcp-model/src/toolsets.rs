//! Toolsets: named groups of tools an operator enables (`--toolsets health,inventory`), so an
//! assistant sees only the tools it is meant to use. Which toolset a tool belongs to is decided
//! here, once ([`Toolset::of`]); the agent and the gateway filter their tools, prompts and
//! resources by it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::definitions::{
    ANALYZE_XID_ERRORS, DESCRIBE_GPU_NODE, EXPLAIN_POD_GPU_FAILURE, GET_GPU_HEALTH,
    GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY, GET_POD_GPU_ALLOCATION,
    LIST_GPU_NODES,
};
use crate::error::Error;

/// A named group of tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolset {
    /// What the GPUs are: `get_gpu_inventory`.
    Inventory,
    /// Whether they are well: `get_gpu_health`, `analyze_xid_errors`.
    Health,
    /// Who runs on them: `get_gpu_processes`.
    Processes,
    /// How they are wired.
    Topology,
    /// The gateway's view of the cluster: `list_gpu_nodes`, and with the cluster context
    /// `describe_gpu_node`, `get_pod_gpu_allocation`, `explain_pod_gpu_failure`.
    Cluster,
}

impl Toolset {
    /// Every toolset, in the order they are listed.
    pub const ALL: [Toolset; 5] = [
        Self::Inventory,
        Self::Health,
        Self::Processes,
        Self::Topology,
        Self::Cluster,
    ];

    /// The name used in flags and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Health => "health",
            Self::Processes => "processes",
            Self::Topology => "topology",
            Self::Cluster => "cluster",
        }
    }

    /// The toolset `tool` belongs to; `None` for a tool this crate does not know.
    pub fn of(tool: &str) -> Option<Self> {
        match tool {
            GET_GPU_INVENTORY => Some(Self::Inventory),
            GET_GPU_HEALTH | ANALYZE_XID_ERRORS => Some(Self::Health),
            GET_GPU_PROCESSES => Some(Self::Processes),
            GET_NVLINK_TOPOLOGY => Some(Self::Topology),
            LIST_GPU_NODES
            | DESCRIBE_GPU_NODE
            | GET_POD_GPU_ALLOCATION
            | EXPLAIN_POD_GPU_FAILURE => Some(Self::Cluster),
            _ => None,
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Toolset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownToolset {
                given: s.to_owned(),
                known: Self::ALL.map(Self::as_str).join(", "),
            })
    }
}

/// The enabled toolsets (all by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolsets(BTreeSet<Toolset>);

impl Default for Toolsets {
    fn default() -> Self {
        Self::all()
    }
}

impl Toolsets {
    /// Every toolset.
    pub fn all() -> Self {
        Self(Toolset::ALL.into_iter().collect())
    }

    /// Exactly `toolsets`.
    pub fn of(toolsets: impl IntoIterator<Item = Toolset>) -> Self {
        Self(toolsets.into_iter().collect())
    }

    /// Reads a comma-separated list (`health,inventory`), or `all`; an empty list or an unknown
    /// name is refused, naming the known ones.
    pub fn parse(list: &str) -> Result<Self, Error> {
        if list.trim().eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        let set = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Toolset::from_str)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() {
            return Err(Error::UnknownToolset {
                given: list.to_owned(),
                known: Toolset::ALL.map(Toolset::as_str).join(", "),
            });
        }
        Ok(Self(set))
    }

    /// Whether `toolset` is enabled.
    pub fn contains(&self, toolset: Toolset) -> bool {
        self.0.contains(&toolset)
    }

    /// Whether the tool `tool` is enabled: its toolset is (a tool of no toolset always is).
    pub fn enables(&self, tool: &str) -> bool {
        Toolset::of(tool).is_none_or(|t| self.contains(t))
    }

    /// Whether every toolset is enabled.
    pub fn is_all(&self) -> bool {
        self.0.len() == Toolset::ALL.len()
    }

    /// The enabled toolsets, in their order.
    pub fn iter(&self) -> impl Iterator<Item = Toolset> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for Toolsets {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Toolsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Toolset::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_tool_definitions;

    #[test]
    fn every_tool_belongs_to_a_toolset() {
        for tool in gpu_tool_definitions() {
            assert!(Toolset::of(&tool.name).is_some(), "{}", tool.name);
        }
        assert_eq!(Toolset::of(LIST_GPU_NODES), Some(Toolset::Cluster));
        assert_eq!(Toolset::of(ANALYZE_XID_ERRORS), Some(Toolset::Health));
    }

    #[test]
    fn lists_parse_and_print() {
        let t = Toolsets::parse(" Health , inventory,").unwrap();
        assert_eq!(t.to_string(), "inventory,health");
        assert!(t.enables(GET_GPU_HEALTH) && t.enables(ANALYZE_XID_ERRORS));
        assert!(!t.enables(LIST_GPU_NODES));
        assert!(t.enables("a_tool_of_no_toolset"));
        assert!(Toolsets::parse("all").unwrap().is_all());
        assert!(Toolsets::default().is_all());
        assert_eq!(
            Toolsets::parse("all").unwrap().to_string(),
            "inventory,health,processes,topology,cluster"
        );
        for bad in ["", " , ", "healthy", "health,gpu"] {
            let e = Toolsets::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("inventory, health, processes, topology, cluster"),
                "{bad}: {e}"
            );
        }
    }
}
