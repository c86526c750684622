//! Readiness state served at `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flag: cheap to clone, every clone sees the same state.
///
/// The agent is ready as soon as it serves; the gateway flips it once discovery has synced.
#[derive(Debug, Clone)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    /// A flag starting in the given state.
    pub fn new(ready: bool) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(ready)),
        }
    }

    /// Marks the process ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
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
    }
}
