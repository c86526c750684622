//! gpu-mcp-tools (being built).
