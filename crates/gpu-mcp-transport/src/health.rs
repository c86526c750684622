//! Readiness state served at `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flag: cheap to clone, every clone sees the same state.
///
/// The agent is ready as soon as it serves; the gateway flips it once discovery has synced.
#[derive(Debug, Clone)]
pub struct Health {
    ready: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl Health {
    /// A flag starting in the given state.
    pub fn new(ready: bool) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(ready)),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the process ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Marks the process as shutting down: `/readyz` answers 503 from now on, whatever
    /// [`Health::set_ready`] says later.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the process is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether `/readyz` answers 200: ready and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }
}

impl Default for Health {
    /// Ready.
    fn default() -> Self {
        Self::new(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_state() {
        let h = Health::new(false);
        let c = h.clone();
        assert!(!c.is_ready());
        h.set_ready(true);
        assert!(c.is_ready());
        h.set_draining();
        h.set_ready(true);
        assert!(!c.is_ready());
    }
}
