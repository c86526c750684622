//! [`CoalescingBackend`]: one driver read serves every caller that asks at about the same time.
//!
//! A node's agent may be polled by many clients at once (a gateway fanning out, dashboards, an
//! assistant retrying).
//! Reading every field of every GPU through NVML costs tens to hundreds of driver calls, so the
//! wrapper makes concurrent callers share one in-flight read, and callers within `max_age` of the
//! last successful read reuse it.
//! A failed read is shared by the callers waiting on it but never kept: the next caller reads
//! again.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent};
use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

use crate::backend::GpuBackend;
use crate::{Error, Result};

type Fetch = Shared<BoxFuture<'static, std::result::Result<Arc<NodeSnapshot>, Arc<Error>>>>;

#[derive(Default)]
struct State {
    /// The last successful read and when it finished.
    latest: Option<(Instant, Arc<NodeSnapshot>)>,
    /// Counts successful reads; the generation of `latest`.
    generation: u64,
    /// The read in progress, which new callers join.
    in_flight: Option<Fetch>,
}

/// A [`GpuBackend`] that shares snapshots among callers: concurrent calls share one read of the
/// wrapped backend, and a snapshot younger than `max_age` is reused.
/// A `max_age` of zero turns both off (every call reads the backend).
pub struct CoalescingBackend {
    inner: Arc<dyn GpuBackend>,
    max_age: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for CoalescingBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoalescingBackend")
            .field("inner", &self.inner.kind())
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl CoalescingBackend {
    /// Wraps `inner`, reusing snapshots for up to `max_age`.
    pub fn new(inner: Arc<dyn GpuBackend>, max_age: Duration) -> Self {
        Self {
            inner,
            max_age,
            state: Mutex::new(State::default()),
        }
    }

    /// How long a snapshot is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    async fn shared_snapshot(&self) -> Result<NodeSnapshot> {
        let fetch = {
            let mut state = self.state();
            if let Some((at, snapshot)) = &state.latest
                && at.elapsed() < self.max_age
            {
                return Ok(NodeSnapshot::clone(snapshot));
            }
            match &state.in_flight {
                Some(fetch) => fetch.clone(),
                None => {
                    let inner = self.inner.clone();
                    let fetch =
                        async move { inner.snapshot().await.map(Arc::new).map_err(Arc::new) }
                            .boxed()
                            .shared();
                    state.in_flight = Some(fetch.clone());
                    fetch
                }
            }
        };
        let outcome = fetch.clone().await;
        {
            let mut state = self.state();
            if state.in_flight.as_ref().is_some_and(|f| f.ptr_eq(&fetch)) {
                state.in_flight = None;
                if let Ok(snapshot) = &outcome {
                    state.latest = Some((Instant::now(), snapshot.clone()));
                    state.generation = state.generation.wrapping_add(1);
                }
            }
        }
        match outcome {
            Ok(snapshot) => Ok(NodeSnapshot::clone(&snapshot)),
            Err(e) => Err(Error::Shared(e)),
        }
    }
}

impl GpuBackend for CoalescingBackend {
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
        if self.max_age.is_zero() {
            return self.inner.snapshot();
        }
        Box::pin(self.shared_snapshot())
    }

    fn xid_events(&self) -> Vec<XidEvent> {
        self.inner.xid_events()
    }

    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.inner.xid_recorder_status()
    }

    fn sxid_events(&self) -> Vec<gpu_mcp_model::xid::SxidEvent> {
        self.inner.sxid_events()
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn fleet_allocations(&self) -> Option<crate::FleetAllocations> {
        self.inner.fleet_allocations()
    }

    fn fresh_generation(&self) -> Option<u64> {
        if self.max_age.is_zero() {
            return None;
        }
        let state = self.state();
        state
            .latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|_| state.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MockBackend, MockConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts reads; each read takes 100 ms (of paused tokio time) and fails while `failing`.
    struct Counting {
        mock: MockBackend,
        reads: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Counting {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                mock: MockBackend::new(MockConfig::default()).unwrap(),
                reads: AtomicUsize::new(0),
                failing: std::sync::atomic::AtomicBool::new(false),
            })
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl GpuBackend for Counting {
        fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(Error::Timeout {
                        call: "nvmlDeviceGetCount",
                        timeout: Duration::from_secs(5),
                    });
                }
                self.mock.snapshot().await
            })
        }
        fn xid_events(&self) -> Vec<XidEvent> {
            self.mock.xid_events()
        }
        fn xid_recorder_status(&self) -> EventRecorderStatus {
            self.mock.xid_recorder_status()
        }
        fn kind(&self) -> BackendKind {
            self.mock.kind()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_read() {
        let counting = Counting::new();
        let backend = CoalescingBackend::new(counting.clone(), Duration::from_secs(1));
        let snaps = futures::future::join_all((0..5).map(|_| backend.snapshot())).await;
        assert_eq!(counting.reads(), 1);
        let first = snaps[0].as_ref().unwrap();
        assert_eq!(first.gpus.len(), 8);
        for s in &snaps {
            assert_eq!(s.as_ref().unwrap(), first);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_is_reused_until_it_is_max_age_old() {
        let counting = Counting::new();
        let backend = CoalescingBackend::new(counting.clone(), Duration::from_secs(1));
        backend.snapshot().await.unwrap();
        tokio::time::advance(Duration::from_millis(900)).await;
        backend.snapshot().await.unwrap();
        assert_eq!(counting.reads(), 1);
        tokio::time::advance(Duration::from_millis(100)).await;
        backend.snapshot().await.unwrap();
        assert_eq!(counting.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_generation_names_a_fresh_snapshot_and_changes_with_each_read() {
        let counting = Counting::new();
        let backend = CoalescingBackend::new(counting.clone(), Duration::from_secs(1));
        assert_eq!(backend.fresh_generation(), None, "nothing read yet");
        backend.snapshot().await.unwrap();
        let first = backend.fresh_generation();
        assert!(first.is_some());
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(backend.fresh_generation(), first, "still the same snapshot");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(backend.fresh_generation(), None, "the snapshot is too old");
        backend.snapshot().await.unwrap();
        let second = backend.fresh_generation();
        assert!(second.is_some());
        assert_ne!(second, first);
        let off = CoalescingBackend::new(counting, Duration::ZERO);
        off.snapshot().await.unwrap();
        assert_eq!(off.fresh_generation(), None, "max age zero reuses nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_max_age_reads_every_time() {
        let counting = Counting::new();
        let backend = CoalescingBackend::new(counting.clone(), Duration::ZERO);
        let _ = futures::future::join_all((0..3).map(|_| backend.snapshot())).await;
        backend.snapshot().await.unwrap();
        assert_eq!(counting.reads(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_but_not_kept() {
        let counting = Counting::new();
        counting.failing.store(true, Ordering::SeqCst);
        let backend = CoalescingBackend::new(counting.clone(), Duration::from_secs(1));
        let outcomes = futures::future::join_all((0..3).map(|_| backend.snapshot())).await;
        assert_eq!(counting.reads(), 1);
        for o in outcomes {
            let e = o.unwrap_err();
            assert!(e.to_string().contains("did not answer"), "{e}");
        }
        counting.failing.store(false, Ordering::SeqCst);
        backend.snapshot().await.unwrap();
        assert_eq!(counting.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_does_not_lose_the_read_for_others() {
        let counting = Counting::new();
        let backend = CoalescingBackend::new(counting.clone(), Duration::from_secs(1));
        // Start a read and give up on it half-way.
        let _ = tokio::time::timeout(Duration::from_millis(50), backend.snapshot()).await;
        backend.snapshot().await.unwrap();
        assert_eq!(counting.reads(), 1);
        assert_eq!(backend.kind(), BackendKind::Mock);
    }
}
