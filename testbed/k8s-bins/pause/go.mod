// The pause program of the local test cluster's real node: the process that holds each
// pod sandbox's namespaces. Standard library only, built static (CGO_ENABLED=0).
module gpu-mcp.local/k8s-bins/pause

go 1.26.0
