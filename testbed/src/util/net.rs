//! Loopback ports: free ones for the processes started, and a clear error for a taken one.

use std::net::{IpAddr, Ipv4Addr, TcpListener};

use anyhow::{Context, Result, bail};

/// A free TCP port on `ip` (bound then released; good enough for a local run).
pub fn free_port(ip: IpAddr) -> Result<u16> {
    let listener =
        TcpListener::bind((ip, 0)).with_context(|| format!("binding a free port on {ip}"))?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct free TCP ports on 127.0.0.1 (held open together so they differ).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Fails with a clear message when `port` on 127.0.0.1 is taken.
pub fn check_port_free(port: u16, what: &str) -> Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(err) => bail!(
            "127.0.0.1:{port} (asked for {what}) is not free: {err}; stop whatever listens there \
             (`ss -ltnp 'sport = :{port}'`) or choose another port"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(4).unwrap();
        let mut sorted = ports.clone();
        sorted.dedup();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        for port in ports {
            check_port_free(port, "test").unwrap();
        }
        assert_ne!(free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap(), 0);
    }

    #[test]
    fn a_taken_port_is_reported() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port_free(port, "the API server")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
