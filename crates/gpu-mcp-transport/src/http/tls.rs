//! TLS for the HTTP transport (rustls with the ring provider).

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// Where the server's certificate comes from.
#[derive(Clone)]
pub enum TlsConfig {
    /// PEM bytes: the certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    Pem {
        /// PEM-encoded certificates.
        cert_chain: Vec<u8>,
        /// PEM-encoded private key.
        private_key: Vec<u8>,
    },
    /// A ready rustls configuration (its ALPN list is used as given).
    Rustls(Arc<ServerConfig>),
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem { cert_chain, .. } => f
                .debug_struct("Pem")
                .field("cert_chain_bytes", &cert_chain.len())
                .finish_non_exhaustive(),
            Self::Rustls(_) => f.write_str("Rustls(..)"),
        }
    }
}

impl TlsConfig {
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor> {
        let config = match self {
            Self::Rustls(c) => c.clone(),
            Self::Pem {
                cert_chain,
                private_key,
            } => Arc::new(server_config(cert_chain, private_key)?),
        };
        Ok(TlsAcceptor::from(config))
    }
}

fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("cannot read the certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls(
            "the certificate PEM holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Tls(format!("cannot read the private key PEM: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Tls(format!(
                "certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let Err(err) = (TlsConfig::Pem {
            cert_chain: b"not a pem".to_vec(),
            private_key: b"nope".to_vec(),
        })
        .acceptor() else {
            panic!("garbage PEM accepted");
        };
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
