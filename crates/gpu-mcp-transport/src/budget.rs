//! Process-wide byte budget: request bodies being read and responses being written draw on it,
//! so the memory clients can pin is bounded whatever they do.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A shared pool of bytes; cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pool: Arc<Semaphore>,
}

/// Bytes taken from a [`Budget`]; they return to it when this is dropped.
#[derive(Debug)]
pub(crate) struct Held(Option<OwnedSemaphorePermit>);

impl Budget {
    /// A pool of `bytes` bytes (at least one, at most `u32::MAX`).
    pub(crate) fn new(bytes: usize) -> Self {
        let bytes = bytes
            .clamp(1, u32::MAX as usize)
            .min(Semaphore::MAX_PERMITS);
        Self {
            pool: Arc::new(Semaphore::new(bytes)),
        }
    }

    /// Takes `n` bytes now, or `None` when the pool has fewer left.
    pub(crate) fn try_take(&self, n: usize) -> Option<Held> {
        if n == 0 {
            return Some(Held(None));
        }
        let n = u32::try_from(n).ok()?;
        self.pool
            .clone()
            .try_acquire_many_owned(n)
            .ok()
            .map(|p| Held(Some(p)))
    }

    /// Bytes left in the pool.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.pool.available_permits()
    }
}

impl Held {
    /// Nothing held.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Adds `other`'s bytes to these.
    pub(crate) fn merge(&mut self, other: Held) {
        match (&mut self.0, other.0) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_return_when_dropped() {
        let b = Budget::new(100);
        let mut held = b.try_take(60).unwrap();
        assert!(b.try_take(50).is_none());
        held.merge(b.try_take(40).unwrap());
        assert_eq!(b.available(), 0);
        drop(held);
        assert_eq!(b.available(), 100);
        assert!(b.try_take(0).is_some());
    }
}
