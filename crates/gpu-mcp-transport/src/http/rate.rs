//! The per-client request rate limit of the MCP endpoint: a token bucket per peer address.
//!
//! Each client (an IPv4 address, or the /64 network of an IPv6 address, where one host usually
//! holds many addresses) starts with `burst` requests and earns `per_second` more each second, up
//! to `burst` again. A request that finds the bucket empty is refused with 429 and told how long
//! until the next one would pass.
//!
//! The table of buckets is bounded: when it is full, buckets that have refilled (their clients
//! are as if never seen) are dropped, at most once a second, and while it is still full new
//! clients are served untracked rather than refused, so no client can lock others out by
//! filling it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Default requests a client may send at once: 200.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 200;

/// Default requests per second a client earns back: 50.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: f64 = 50.0;

/// Most clients tracked at once.
const MAX_TRACKED: usize = 16_384;

/// The per-client request rate on the MCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests a client may send at once (the bucket's size); at least 1.
    pub burst: u32,
    /// Requests per second a client earns back; a value that is not positive turns the limit
    /// off.
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: DEFAULT_RATE_LIMIT_BURST,
            per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
        }
    }
}

impl RateLimit {
    /// Whether this limit limits anything.
    pub fn is_on(&self) -> bool {
        self.per_second.is_finite() && self.per_second > 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How often a full table is searched for refilled buckets, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The buckets of every client, and when the table was last pruned.
#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    pruned: Option<Instant>,
}

/// The buckets of every client.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<RateLimit>,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// A limiter for `limit`; `None` (or a limit that is off) admits everything.
    pub(crate) fn new(limit: Option<RateLimit>) -> Self {
        Self {
            limit: limit.filter(RateLimit::is_on).map(|l| RateLimit {
                burst: l.burst.max(1),
                per_second: l.per_second,
            }),
            table: Mutex::new(Table::default()),
        }
    }

    /// Takes one request from `peer`'s bucket now: `Ok` when admitted, else how long until the
    /// bucket holds a request again.
    pub(crate) fn admit(&self, peer: IpAddr) -> Result<(), Duration> {
        self.admit_at(peer, Instant::now())
    }

    fn admit_at(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let burst = f64::from(limit.burst);
        let key = client_key(peer);
        let mut table = self.table.lock();
        let Table { buckets, pruned } = &mut *table;
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED {
            // Searching the whole table is bounded to once a second, however many newcomers.
            if pruned.is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY) {
                buckets.retain(|_, b| refilled(b, now, limit) < burst);
                *pruned = Some(now);
            }
            if buckets.len() >= MAX_TRACKED {
                return Ok(());
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, limit).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / limit.per_second;
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
    }
}

/// The bucket's tokens at `now`, before the cap.
fn refilled(bucket: &Bucket, now: Instant, limit: RateLimit) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens + elapsed * limit.per_second
}

/// Who a peer address is, as a client: the address itself, or its /64 for IPv6 (an IPv4 address
/// mapped into IPv6 counts as the IPv4 address).
fn client_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// The `Retry-After` seconds for a wait: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    secs.max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::Ipv4Addr;

    fn limiter(burst: u32, per_second: f64) -> RateLimiter {
        RateLimiter::new(Some(RateLimit { burst, per_second }))
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let l = limiter(3, 2.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit_at(A, t0), Ok(()));
        }
        let wait = l.admit_at(A, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // Another client has its own bucket.
        assert_eq!(l.admit_at(B, t0), Ok(()));
        // Half a second later one more request passes, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.admit_at(A, t1), Ok(()));
        assert!(l.admit_at(A, t1).is_err());
        // Idle for long, the bucket is full again but no fuller than the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.admit_at(A, t2), Ok(()));
        }
        assert!(l.admit_at(A, t2).is_err());
    }

    #[test]
    fn off_limits_admit_everything() {
        for limit in [
            None,
            Some(RateLimit {
                burst: 1,
                per_second: 0.0,
            }),
            Some(RateLimit {
                burst: 1,
                per_second: f64::NAN,
            }),
        ] {
            let l = RateLimiter::new(limit);
            let now = Instant::now();
            for _ in 0..1000 {
                assert_eq!(l.admit_at(A, now), Ok(()));
            }
        }
        // A burst of 0 still lets one request through.
        let l = limiter(0, 1.0);
        let now = Instant::now();
        assert_eq!(l.admit_at(A, now), Ok(()));
        assert!(l.admit_at(A, now).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_network_and_mapped_ipv4_as_ipv4() {
        let l = limiter(1, 1.0);
        let now = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(l.admit_at(one, now), Ok(()));
        assert!(l.admit_at(same_net, now).is_err());
        assert_eq!(l.admit_at(other_net, now), Ok(()));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(l.admit_at(A, now), Ok(()));
        assert!(l.admit_at(mapped, now).is_err());
        assert_eq!(l.admit_at(B, now), Ok(()), "other IPv4 clients are apart");
    }

    #[test]
    fn a_full_table_forgets_refilled_clients_and_never_refuses_a_new_one() {
        let l = limiter(1, 1.0);
        let t0 = Instant::now();
        let peer = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_TRACKED {
            assert_eq!(l.admit_at(peer(i), t0), Ok(()));
        }
        // Full of empty buckets: a newcomer is served untracked.
        let newcomer = peer(MAX_TRACKED);
        assert_eq!(l.admit_at(newcomer, t0), Ok(()));
        assert_eq!(l.admit_at(newcomer, t0), Ok(()));
        assert_eq!(l.table.lock().buckets.len(), MAX_TRACKED);
        // Once the others have refilled they are forgotten, and the newcomer is tracked.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(l.admit_at(newcomer, t1), Ok(()));
        assert!(l.admit_at(newcomer, t1).is_err());
        assert_eq!(l.table.lock().buckets.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }
}
