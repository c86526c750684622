//! Certificates and keys for the local cluster, made with the `openssl` command-line tool.
//!
//! One CA signs a serving certificate for `127.0.0.1`/`localhost` (used by kube-apiserver and
//! by kwok's kubelet endpoint) and one client certificate per identity.
//! Keys are ECDSA P-256: fast to generate and accepted by every component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::util::cmd;

/// A client identity: certificate subject `CN=<user>, O=<group>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    /// File stem of the certificate and key.
    pub(crate) file: &'static str,
    /// User name (certificate common name).
    pub(crate) user: &'static str,
    /// Group (certificate organisation), if any.
    pub(crate) group: Option<&'static str>,
}

/// The cluster administrator (bound to `cluster-admin` through `system:masters`).
pub(crate) const ADMIN: Identity = Identity {
    file: "admin",
    user: "kubernetes-admin",
    group: Some("system:masters"),
};
/// kube-controller-manager (bootstrap RBAC binds this user name).
pub(crate) const CONTROLLER_MANAGER: Identity = Identity {
    file: "kube-controller-manager",
    user: "system:kube-controller-manager",
    group: None,
};
/// kube-scheduler (bootstrap RBAC binds this user name).
pub(crate) const SCHEDULER: Identity = Identity {
    file: "kube-scheduler",
    user: "system:kube-scheduler",
    group: None,
};
/// The kwok controller: it writes the status of every fake node and pod.
pub(crate) const KWOK: Identity = Identity {
    file: "kwok-controller",
    user: "kwok-controller",
    group: Some("system:masters"),
};

/// The real node's kubelet (the Node authorizer knows nodes by this user name and group).
pub(crate) const REAL_NODE: Identity = Identity {
    file: "kubelet-gpu-mcp-real-node",
    user: "system:node:gpu-mcp-real-node",
    group: Some("system:nodes"),
};
/// The API server when it calls a kubelet (exec, logs): the real node's kubelet authenticates
/// it by this certificate and asks the API server whether it may.
pub(crate) const APISERVER_KUBELET_CLIENT: Identity = Identity {
    file: "kube-apiserver-kubelet-client",
    user: "kube-apiserver-kubelet-client",
    group: Some("system:masters"),
};

/// Paths of the generated material.
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    /// The directory holding everything below.
    pub(crate) dir: PathBuf,
    /// The CA certificate.
    pub(crate) ca_cert: PathBuf,
    /// The loopback serving certificate and its key.
    pub(crate) serving_cert: PathBuf,
    pub(crate) serving_key: PathBuf,
    /// The ServiceAccount token signing key and its public half.
    pub(crate) sa_key: PathBuf,
    pub(crate) sa_pub: PathBuf,
}

impl Pki {
    /// Client certificate and key of an identity.
    pub(crate) fn client(&self, id: &Identity) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{}.crt", id.file)),
            self.dir.join(format!("{}.key", id.file)),
        )
    }
}

/// Runs `openssl <args>` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    match cmd::run(
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null()),
    ) {
        Ok(_) => Ok(()),
        Err(err) if cmd::is_not_found(&err) => bail!(
            "the `openssl` command is needed to create the local cluster's certificates; \
             install it (Debian/Ubuntu: `apt-get install openssl`)"
        ),
        Err(err) => Err(err),
    }
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// Creates a CA, a loopback serving certificate, the service-account key pair and one client
/// certificate per identity in `dir`.
pub(crate) fn generate(dir: &Path, identities: &[Identity]) -> anyhow::Result<Pki> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pki = Pki {
        dir: dir.to_path_buf(),
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("serving.crt"),
        serving_key: dir.join("serving.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
    };
    let mut ca = vec!["req", "-x509", "-nodes"];
    ca.extend(EC);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=gpu-mcp-local-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    openssl(dir, &ca)?;

    sign(
        dir,
        "serving",
        "/CN=127.0.0.1",
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
         DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
    )?;
    for id in identities {
        let subject = match id.group {
            Some(group) => format!("/O={group}/CN={}", id.user),
            None => format!("/CN={}", id.user),
        };
        sign(
            dir,
            id.file,
            &subject,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n",
        )?;
    }

    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "sa.key",
        ],
    )?;
    openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    Ok(pki)
}

fn sign(dir: &Path, stem: &str, subject: &str, extensions: &str) -> anyhow::Result<()> {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let crt = format!("{stem}.crt");
    let ext = format!("{stem}.ext");
    let mut req = vec!["req", "-new", "-nodes"];
    req.extend(EC);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &req)?;
    fs::write(dir.join(&ext), extensions).with_context(|| format!("writing {ext}"))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "365",
            "-extfile",
            &ext,
        ],
    )?;
    let _ = fs::remove_file(dir.join(&csr));
    let _ = fs::remove_file(dir.join(&ext));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl_text(path: &Path) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn generates_a_ca_a_loopback_serving_cert_and_client_identities() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl not installed; skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("gpu-mcp-pki-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let pki = generate(&dir, &[ADMIN, SCHEDULER]).unwrap();

        let serving = openssl_text(&pki.serving_cert);
        assert!(serving.contains("IP Address:127.0.0.1"), "{serving}");
        assert!(serving.contains("TLS Web Server Authentication"));

        let admin = openssl_text(&pki.client(&ADMIN).0);
        assert!(
            admin.contains("O = system:masters, CN = kubernetes-admin"),
            "{admin}"
        );
        assert!(admin.contains("TLS Web Client Authentication"));
        let scheduler = openssl_text(&pki.client(&SCHEDULER).0);
        assert!(
            scheduler.contains("CN = system:kube-scheduler"),
            "{scheduler}"
        );

        let verify = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&pki.ca_cert)
            .arg(&pki.serving_cert)
            .arg(pki.client(&ADMIN).0)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert!(pki.sa_key.is_file() && pki.sa_pub.is_file());
        fs::remove_dir_all(&dir).unwrap();
    }
}
