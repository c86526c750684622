//! One GPU's blocking read on a blocking thread with a deadline, never two stuck reads of the
//! same GPU.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_model::{GpuAccess, GpuSnapshot};
use parking_lot::Mutex;

/// How a guarded blocking read ended.
pub(super) enum Guarded<T> {
    /// It returned in time.
    Done(T),
    /// An earlier read under the same key has not returned.
    Busy,
    /// It panicked (a bug, reported as data).
    Failed(String),
    /// It missed the deadline (its thread keeps running until the driver returns).
    TimedOut,
}

impl<T> Guarded<T> {
    /// One sentence for a read that did not return a value.
    pub(super) fn reason(&self, what: &str, timeout: Duration) -> String {
        match self {
            Self::Done(_) => format!("{what} succeeded"),
            Self::Busy => format!(
                "an earlier {what} has not returned from the driver; the driver or GPU may be hung"
            ),
            Self::Failed(e) => format!("{what} failed: {e}"),
            Self::TimedOut => format!(
                "the driver did not answer {what} within {timeout:?}; the driver or GPU may be hung"
            ),
        }
    }
}

/// Runs a blocking read on a blocking thread with a deadline, at most one per `key` at a time.
///
/// A read that misses the deadline keeps its thread (a call stuck in the driver cannot be
/// cancelled); until it returns, later reads under the same key answer [`Guarded::Busy`] at
/// once instead of piling up more stuck threads.
pub(super) async fn guarded<T, F>(
    busy: &Arc<Mutex<HashSet<u32>>>,
    key: u32,
    timeout: Duration,
    read: F,
) -> Guarded<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !busy.lock().insert(key) {
        return Guarded::Busy;
    }
    let busy = busy.clone();
    let task = tokio::task::spawn_blocking(move || {
        // Cleared when the read returns, even if the driver took longer than the deadline.
        let _guard = BusyGuard { busy, index: key };
        read()
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(v)) => Guarded::Done(v),
        Ok(Err(e)) => Guarded::Failed(e.to_string()),
        Err(_) => Guarded::TimedOut,
    }
}

/// Runs one GPU's blocking read with [`guarded`], turning a read that did not return into an
/// unreadable GPU.
pub(super) async fn guarded_read<F>(
    busy: &Arc<Mutex<HashSet<u32>>>,
    index: u32,
    timeout: Duration,
    read: F,
) -> GpuSnapshot
where
    F: FnOnce() -> GpuSnapshot + Send + 'static,
{
    match guarded(busy, index, timeout, read).await {
        Guarded::Done(g) => g,
        Guarded::Busy => GpuSnapshot::unreadable(
            index,
            GpuAccess::Unresponsive,
            "an earlier read of this GPU has not returned from the driver; the driver or GPU may be hung",
        ),
        Guarded::Failed(e) => GpuSnapshot::unreadable(
            index,
            GpuAccess::Error,
            &format!("reading the GPU failed: {e}"),
        ),
        Guarded::TimedOut => GpuSnapshot::unreadable(
            index,
            GpuAccess::Unresponsive,
            &format!("the driver did not answer within {timeout:?}; the driver or GPU may be hung"),
        ),
    }
}

struct BusyGuard {
    busy: Arc<Mutex<HashSet<u32>>>,
    index: u32,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.busy.lock().remove(&self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_read_reports_unresponsive_and_is_not_stacked() {
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // A driver call that hangs until released.
        let first = guarded_read(&busy, 3, Duration::from_millis(50), move || {
            let _ = wait.recv();
            let _ = done_tx.send(());
            GpuSnapshot::unreadable(3, GpuAccess::Ok, "released")
        })
        .await;
        assert_eq!(first.access, GpuAccess::Unresponsive);
        assert!(first.access_detail.unwrap().contains("did not answer"));
        // While it is stuck, the next read does not start another thread.
        let second = guarded_read(&busy, 3, Duration::from_secs(5), || {
            panic!("a second read must not start while the first is stuck")
        })
        .await;
        assert_eq!(second.access, GpuAccess::Unresponsive);
        assert!(second.access_detail.unwrap().contains("earlier read"));
        // Other GPUs are unaffected.
        let other = guarded_read(&busy, 4, Duration::from_secs(5), || {
            GpuSnapshot::unreadable(4, GpuAccess::Ok, "fine")
        })
        .await;
        assert_eq!(other.access, GpuAccess::Ok);
        // Once the driver returns, the GPU is read again.
        release.send(()).unwrap();
        done_rx.recv().unwrap();
        let mut third = None;
        for _ in 0..100 {
            let r = guarded_read(&busy, 3, Duration::from_secs(5), || {
                GpuSnapshot::unreadable(3, GpuAccess::Ok, "again")
            })
            .await;
            if r.access == GpuAccess::Ok {
                third = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            third.is_some(),
            "the GPU stayed marked busy after the read returned"
        );
    }

    #[tokio::test]
    async fn a_panicking_read_is_an_error_not_a_crash() {
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let r = guarded_read(&busy, 0, Duration::from_secs(5), || panic!("driver bug")).await;
        assert_eq!(r.access, GpuAccess::Error);
        assert!(busy.lock().is_empty());
    }
}
