//! Errors of the GPU backends.

use std::time::Duration;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The NVIDIA management library could not be loaded (no driver on this machine).
    #[error(
        "NVIDIA driver library {library} could not be loaded ({detail}); install the NVIDIA driver or expose it to the container (NVIDIA container toolkit), or run with the mock backend"
    )]
    NvmlLibraryMissing {
        /// The library name or path that was tried.
        library: String,
        /// The loader's message.
        detail: String,
    },
    /// The driver library and the loaded kernel module are different versions (the driver was
    /// upgraded without a reboot).
    #[error(
        "NVML initialisation failed: the NVIDIA driver library and the loaded kernel module are different versions (NVML_ERROR_LIB_RM_VERSION_MISMATCH), as after a driver upgrade without a reboot; drain the node and reboot it, or reload the nvidia kernel modules"
    )]
    NvmlVersionMismatch,
    /// `nvmlInit` did not return within its deadline.
    #[error(
        "NVML initialisation did not finish within {timeout:?}: the NVIDIA driver may be hung; check the kernel log for Xid errors and whether nvidia-smi answers"
    )]
    NvmlInitTimeout {
        /// The deadline.
        timeout: Duration,
    },
    /// NVML was loaded but failed to initialise.
    #[error("NVML initialisation failed: {0}")]
    NvmlInit(#[source] nvml_wrapper::error::NvmlError),
    /// A whole-node NVML call failed (for example the device count).
    #[error("NVML call {call} failed: {source}")]
    Nvml {
        /// The call that failed.
        call: &'static str,
        /// The NVML error.
        #[source]
        source: nvml_wrapper::error::NvmlError,
    },
    /// The driver did not answer within the deadline.
    #[error("the NVIDIA driver did not answer {call} within {timeout:?}; the driver may be hung")]
    Timeout {
        /// The operation that timed out.
        call: &'static str,
        /// The deadline.
        timeout: Duration,
    },
    /// A blocking worker task failed.
    #[error("background task failed: {0}")]
    Task(String),
    /// A read shared by several callers failed (see [`crate::CoalescingBackend`]).
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
    /// A mock configuration or profile is invalid.
    #[error("invalid mock configuration: {0}")]
    MockConfig(String),
    /// An unknown mock scenario name.
    #[error("unknown mock scenario {name:?}; known scenarios: {known}")]
    UnknownScenario {
        /// The name given.
        name: String,
        /// The list of valid names.
        known: String,
    },
    /// An unknown GPU model name for the mock.
    #[error("unknown mock GPU model {name:?}; known models: {known}")]
    UnknownModel {
        /// The name given.
        name: String,
        /// The list of valid names.
        known: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
