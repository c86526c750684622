//! The chart on kind for one routing, and the XID scenario's copy of the agent DaemonSet.

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::cluster::Cluster;
use super::{IMAGE_REPOSITORY, IMAGE_TAG};
use super::{NAMESPACE, NODE_TIMEOUT_SECS, RELEASE, SCENARIO_LABEL, XID_SCENARIO, step};
use crate::chart::CHART_DIR;
use crate::util::{fs, workspace};

impl Cluster<'_> {
    /// `helm upgrade --install` of the chart for `routing` (mock agents, in-cluster gateway), then
    /// the XID scenario's DaemonSet.
    pub(super) fn install(&self, routing: &str, xid_node: &str) -> Result<()> {
        let chart = workspace::workspace_root().join(CHART_DIR);
        let set = format!(
            "agent.nvmlMode=mock,gateway.enabled=true,gpu.runtimeClass.enabled=false,\
             gateway.routing={routing},gateway.replicas=1,\
             auth.enabled=false,networkPolicy.enabled=false,\
             image.repository={IMAGE_REPOSITORY},image.tag={IMAGE_TAG},image.pullPolicy=Never"
        );
        // The main DaemonSet skips the XID node; the gateway stays on the control plane, so pausing
        // a worker never takes the gateway with it.
        let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": SCENARIO_LABEL, "operator": "NotIn", "values": [XID_SCENARIO]},
            ]}],
        }}});
        let gateway_placement = [
            format!(
                "gateway.nodeSelector={}",
                json!({"node-role.kubernetes.io/control-plane": ""})
            ),
            format!(
                "gateway.tolerations={}",
                json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}])
            ),
            format!(
                "gateway.extraArgs={}",
                json!([format!("--node-timeout={NODE_TIMEOUT_SECS}s")])
            ),
            format!("agent.affinity={affinity}"),
        ];
        let chart_path = chart.display().to_string();
        let mut args: Vec<&str> = vec![
            "upgrade",
            "--install",
            RELEASE,
            &chart_path,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--set",
            &set,
            "--wait",
            "--timeout",
            "5m",
        ];
        for s in &gateway_placement {
            args.extend(["--set-json", s.as_str()]);
        }
        step(&format!("helm upgrade --install ({set})"), || {
            self.helm(&args).map(drop)
        })?;
        self.ensure_scenario_daemonset(xid_node)?;
        Ok(())
    }

    /// A copy of the chart's agent DaemonSet for the XID node, with the scenario in its
    /// environment and one more selector label, so the two DaemonSets never claim each other's pods.
    fn ensure_scenario_daemonset(&self, xid_node: &str) -> Result<()> {
        let name = self.single_name("daemonset", "agent")?;
        let mut ds: Value = serde_json::from_str(&self.kubectl(&[
            "-n",
            NAMESPACE,
            "get",
            "daemonset",
            &name,
            "-o",
            "json",
        ])?)?;
        let copy_name = format!("{name}-{XID_SCENARIO}");
        let mut labels = ds["metadata"]["labels"].clone();
        labels[SCENARIO_LABEL] = json!(XID_SCENARIO);
        ds["metadata"] = json!({"name": copy_name, "namespace": NAMESPACE, "labels": labels});
        if let Some(o) = ds.as_object_mut() {
            o.remove("status");
        }
        ds["spec"]["selector"]["matchLabels"][SCENARIO_LABEL] = json!(XID_SCENARIO);
        ds["spec"]["template"]["metadata"]["labels"][SCENARIO_LABEL] = json!(XID_SCENARIO);
        let pod = &mut ds["spec"]["template"]["spec"];
        pod["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": SCENARIO_LABEL, "operator": "In", "values": [XID_SCENARIO]},
            ]}],
        }}});
        let env = pod["containers"][0]["env"]
            .as_array_mut()
            .context("the agent container has no env")?;
        env.retain(|e| e["name"] != "GPU_MCP_AGENT_MOCK_SCENARIO");
        env.push(json!({"name": "GPU_MCP_AGENT_MOCK_SCENARIO", "value": XID_SCENARIO}));
        let path = std::env::temp_dir().join(format!("{copy_name}.json"));
        fs::write(&path, ds.to_string())?;
        self.kubectl(&["apply", "-f", &path.display().to_string()])?;
        self.kubectl(&[
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            "daemonset",
            &copy_name,
            "--timeout=180s",
        ])?;
        let on_node = self.kubectl(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            &format!("{SCENARIO_LABEL}={XID_SCENARIO}"),
            "--field-selector",
            &format!("spec.nodeName={xid_node}"),
            "-o",
            "name",
        ])?;
        ensure!(
            !on_node.trim().is_empty(),
            "no XID-scenario agent pod on {xid_node}"
        );
        Ok(())
    }

    /// The name of the one object of `kind` with `app.kubernetes.io/component=<component>` in the
    /// release (the scenario DaemonSet's copy is told apart by its scenario label).
    pub(super) fn single_name(&self, kind: &str, component: &str) -> Result<String> {
        let selector = format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component},!{SCENARIO_LABEL}"
        );
        let text = self.kubectl(&["-n", NAMESPACE, "get", kind, "-l", &selector, "-o", "name"])?;
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('/').map(|(_, n)| n))
            .collect();
        match names.as_slice() {
            [name] => Ok((*name).to_owned()),
            _ => bail!("expected one {kind} for {selector}, found {names:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::GPU_NODE_LABEL;
    use super::super::tools::Tools;
    use super::*;
    use crate::chart;

    #[test]
    #[ignore = "needs a cluster: GPU_MCP_TEST_KUBECONFIG (nodes labelled nvidia.com/gpu.present=true)"]
    fn install_and_scenario_daemonset_on_a_real_api_server() {
        let kubeconfig = PathBuf::from(std::env::var("GPU_MCP_TEST_KUBECONFIG").unwrap());
        let kubectl = std::env::var_os("GPU_MCP_TEST_KUBECTL")
            .map_or_else(|| crate::cluster::kubectl_path().unwrap(), PathBuf::from);
        let tools = Tools {
            docker: "docker".into(),
            kind: "kind".into(),
            kubectl,
            helm: chart::locate_helm(None).unwrap(),
        };
        let cluster = Cluster {
            tools: &tools,
            kubeconfig,
            owned: false,
            keep: true,
            port_forward: None,
        };
        let mut nodes: Vec<String> = cluster
            .kubectl(&[
                "get",
                "nodes",
                "-l",
                &format!("{GPU_NODE_LABEL}=true"),
                "-o",
                "name",
            ])
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("node/"))
            .map(str::to_owned)
            .collect();
        nodes.sort();
        assert!(nodes.len() >= 3, "need 3 GPU nodes, have {nodes:?}");
        let (control_plane, xid_node) = (&nodes[0], &nodes[1]);
        cluster
            .kubectl(&[
                "label",
                "node",
                control_plane,
                "node-role.kubernetes.io/control-plane=",
                "--overwrite",
            ])
            .unwrap();
        cluster
            .kubectl(&[
                "label",
                "node",
                xid_node,
                &format!("{SCENARIO_LABEL}={XID_SCENARIO}"),
                "--overwrite",
            ])
            .unwrap();

        let result = cluster.install("exec", xid_node);
        let pods = cluster.kubectl(&["-n", NAMESPACE, "get", "pods", "-o", "json"]);
        let main_ds = cluster.single_name("daemonset", "agent");
        // Clean up before asserting.
        let _ = cluster.helm(&["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"]);
        let _ = cluster.kubectl(&[
            "-n",
            NAMESPACE,
            "delete",
            "daemonset",
            "-l",
            SCENARIO_LABEL,
            "--wait=false",
        ]);
        let _ = cluster.kubectl(&[
            "label",
            "node",
            control_plane,
            "node-role.kubernetes.io/control-plane-",
        ]);
        let _ = cluster.kubectl(&["label", "node", xid_node, &format!("{SCENARIO_LABEL}-")]);

        result.unwrap();
        assert_eq!(main_ds.unwrap(), format!("{RELEASE}-agent"));
        let pods: Value = serde_json::from_str(&pods.unwrap()).unwrap();
        let agents: Vec<(&str, Option<&str>)> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "agent")
            .map(|p| {
                let scenario = p["spec"]["containers"][0]["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"] == "GPU_MCP_AGENT_MOCK_SCENARIO")
                    .and_then(|e| e["value"].as_str());
                (p["spec"]["nodeName"].as_str().unwrap_or(""), scenario)
            })
            .collect();
        // One agent per GPU node, and only the XID node's runs the scenario.
        assert_eq!(agents.len(), nodes.len(), "{agents:?}");
        for node in &nodes {
            let here: Vec<_> = agents.iter().filter(|(n, _)| n == node).collect();
            let want = (node == xid_node).then_some(XID_SCENARIO);
            assert_eq!(here.len(), 1, "{node}: {agents:?}");
            assert_eq!(here[0].1, want, "{node}: {agents:?}");
        }
        let gateway: Vec<&Value> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway")
            .collect();
        assert_eq!(gateway.len(), 1);
        assert_eq!(gateway[0]["spec"]["nodeName"], control_plane.as_str());
    }
}
