//! gpu-mcp-gpu (being built).
