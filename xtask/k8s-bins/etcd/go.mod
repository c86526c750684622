// Builds etcd (upstream main of go.etcd.io/etcd/server/v3) for the local test cluster.
module gpu-mcp.local/k8s-bins/etcd

go 1.26.0
