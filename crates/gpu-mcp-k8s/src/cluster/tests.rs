//! What the caches keep of nodes and pods, and how pages walk them.
use super::*;
use serde_json::json;

fn gpu_pod_json(name: &str, node: &str, gpus: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ml-training", "managedFields": [{"manager": "x"}]},
        "spec": {"nodeName": node,
            "initContainers": [{"name": "warmup", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
            "containers": [
                {"name": "worker", "resources": {"limits": {"nvidia.com/gpu": gpus}}},
                {"name": "sidecar", "resources": {"requests": {"cpu": "1"}}},
                {"name": "mig", "resources": {"requests": {"nvidia.com/mig-1g.10gb": "1"},
                                               "limits": {"nvidia.com/mig-1g.10gb": "1"}}}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "worker", "ready": false, "restartCount": 3, "image": "i", "imageID": "",
             "state": {"terminated": {"exitCode": 139, "reason": "Error", "message": "x".repeat(2000)}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "OOMKilled"}}}]}
    }))
    .unwrap()
}

#[test]
fn a_pod_keeps_only_its_gpu_containers_and_counts_like_the_scheduler() {
    let pod = gpu_pod(&gpu_pod_json("a", "n1", "1")).unwrap();
    assert_eq!(pod.node.as_deref(), Some("n1"));
    assert_eq!(pod.phase, "Running");
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["warmup", "worker", "mig"]);
    // The init container's 2 GPUs exceed the app containers' 1.
    assert_eq!(pod.whole_gpus(), 2);
    assert_eq!(pod.gpus.get("nvidia.com/mig-1g.10gb"), Some(&1));
    let worker = &pod.containers[1];
    assert_eq!(worker.state, "terminated");
    assert_eq!(worker.exit_code, Some(139));
    assert_eq!(worker.restart_count, 3);
    assert_eq!(worker.last_termination, Some((Some("OOMKilled".into()), 1)));
    assert!(worker.message.as_ref().unwrap().len() <= MESSAGE_LIMIT + 4);
    assert!(pod.holds_gpus());

    let bigger = gpu_pod(&gpu_pod_json("b", "n1", "4")).unwrap();
    assert_eq!(bigger.whole_gpus(), 4);
}

#[test]
fn a_pod_without_gpus_is_not_kept() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1",
            "nvidia.com/gpu": "0"}}}]}
    }))
    .unwrap();
    assert!(gpu_pod(&pod).is_none());
}

#[test]
fn a_node_keeps_gpu_labels_taints_conditions_and_gpu_resources() {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100",
            "kubernetes.io/os": "linux"}},
        "spec": {"unschedulable": true, "taints": [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
        "status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "96"},
            "allocatable": {"nvidia.com/gpu": "7", "nvidia.com/mig-1g.10gb": "x"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": ""}]}
    }))
    .unwrap();
    let facts = node_facts(&node);
    assert_eq!(facts.name, "gpu-1");
    assert_eq!(facts.gpu_labels.len(), 1);
    assert!(facts.unschedulable);
    assert_eq!(facts.taints.len(), 2);
    assert_eq!(facts.taints[1].value, None);
    assert_eq!(facts.capacity, BTreeMap::from([(GPU_RESOURCE.into(), 8)]));
    assert_eq!(
        facts.allocatable,
        BTreeMap::from([(GPU_RESOURCE.into(), 7)])
    );
    assert_eq!(facts.conditions[0].message, None);
}

#[test]
fn pages_follow_namespace_then_name() {
    let pod = |ns: &str, name: &str, node: &str| GpuPod {
        namespace: ns.into(),
        name: name.into(),
        node: Some(node.into()),
        ..GpuPod::default()
    };
    let cache = ClusterCache::fixed(
        vec![],
        vec![
            pod("a-b", "x", "n1"),
            pod("a", "y", "n2"),
            pod("a", "x", "n1"),
            pod("b", "z", "n1"),
        ],
    );
    let all = PodFilter::default();
    let first = cache.pod_page(&all, None, 2);
    let names: Vec<String> = first
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(names, ["a/x", "a/y"]);
    assert_eq!((first.remaining, first.total), (4, 4));
    let after = ("a".to_owned(), "y".to_owned());
    let second = cache.pod_page(&all, Some(&after), 2);
    assert_eq!(second.pods[0].namespace, "a-b");
    assert_eq!(second.remaining, 2);
    let on_n1 = PodFilter {
        node: Some("n1".into()),
        ..PodFilter::default()
    };
    assert_eq!(cache.pod_page(&on_n1, None, 10).total, 3);
    assert_eq!(cache.pods_on("n2").len(), 1);
    assert!(cache.pods_state().synced);
}
