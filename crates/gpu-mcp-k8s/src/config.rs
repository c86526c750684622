//! Kubernetes client configuration: in-cluster, kubeconfig, explicit path and context.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{ConfigAttempt, Error, Result};

/// Where to load the client configuration from.
///
/// With neither field set, the in-cluster service account is tried first, then the kubeconfig
/// that kube finds itself (`$KUBECONFIG`, else `~/.kube/config`).
/// With a path or a context, only the kubeconfig is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// An explicit kubeconfig file (the gateway's `--kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context to use instead of the current one (the gateway's `--context`).
    pub context: Option<String>,
}

/// Load a client configuration according to `options`.
///
/// The error lists every source tried and why each failed.
pub async fn client_config(options: &ClientOptions) -> Result<kube::Config> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let context_note = options
        .context
        .as_deref()
        .map(|c| format!(", context {c:?}"))
        .unwrap_or_default();
    let mut attempts = Vec::new();

    if let Some(path) = &options.kubeconfig {
        let source = format!("kubeconfig {}{context_note}", path.display());
        let loaded = match Kubeconfig::read_from(path) {
            Ok(kubeconfig) => kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options).await,
            Err(err) => Err(err),
        };
        return loaded.map_err(|err| {
            attempts.push(ConfigAttempt {
                source,
                reason: err.to_string(),
            });
            Error::ClientConfig { attempts }
        });
    }

    if options.context.is_none() {
        match kube::Config::incluster() {
            Ok(config) => return Ok(config),
            Err(err) => attempts.push(ConfigAttempt {
                source: "in-cluster service account".to_owned(),
                reason: err.to_string(),
            }),
        }
    }

    match kube::Config::from_kubeconfig(&kube_options).await {
        Ok(config) => Ok(config),
        Err(err) => {
            attempts.push(ConfigAttempt {
                source: format!("kubeconfig from $KUBECONFIG or ~/.kube/config{context_note}"),
                reason: err.to_string(),
            });
            Err(Error::ClientConfig { attempts })
        }
    }
}

/// Build a [`kube::Client`] from [`client_config`].
pub async fn client(options: &ClientOptions) -> Result<kube::Client> {
    let config = client_config(options).await?;
    kube::Client::try_from(config).map_err(Error::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_explicit_kubeconfig_names_the_path() {
        let options = ClientOptions {
            kubeconfig: Some(PathBuf::from("/nonexistent/gpu-mcp/kubeconfig")),
            context: None,
        };
        let err = client_config(&options).await.unwrap_err();
        let Error::ClientConfig { attempts } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(attempts.len(), 1);
        assert!(
            err.to_string().contains("/nonexistent/gpu-mcp/kubeconfig"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn explicit_kubeconfig_and_context() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-k8s-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
current-context: one
clusters:
- name: c1
  cluster: {server: "http://127.0.0.1:6001"}
- name: c2
  cluster: {server: "http://127.0.0.1:6002"}
contexts:
- name: one
  context: {cluster: c1, user: u, namespace: ns-one}
- name: two
  context: {cluster: c2, user: u}
users:
- name: u
  user: {token: abc}
"#,
        )
        .unwrap();
        let current = client_config(&ClientOptions {
            kubeconfig: Some(path.clone()),
            context: None,
        })
        .await
        .unwrap();
        assert_eq!(current.cluster_url.to_string(), "http://127.0.0.1:6001/");
        assert_eq!(current.default_namespace, "ns-one");

        let two = client_config(&ClientOptions {
            kubeconfig: Some(path.clone()),
            context: Some("two".into()),
        })
        .await
        .unwrap();
        assert_eq!(two.cluster_url.to_string(), "http://127.0.0.1:6002/");

        let err = client_config(&ClientOptions {
            kubeconfig: Some(path.clone()),
            context: Some("three".into()),
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("three"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
