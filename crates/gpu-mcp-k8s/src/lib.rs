//! gpu-mcp-k8s (being built).
