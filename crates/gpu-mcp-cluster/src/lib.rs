//! gpu-mcp-cluster (being built).
