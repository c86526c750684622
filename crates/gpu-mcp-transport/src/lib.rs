//! gpu-mcp-transport (being built).
