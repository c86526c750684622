//! A fake `libnvidia-ml.so.1` for tests: it exports the NVML C functions the NVML backend
//! calls and answers them from a scenario file, so the real backend code (through
//! `nvml-wrapper`, which loads the library at run time) runs in CI without a GPU or a driver.
//!
//! It is test tooling, never shipped: no product crate depends on it, only test code does
//! (as a dev-dependency, which also builds the shared library beside the test binaries).
//!
//! - The shared library (`cdylib`): the exports in [`ffi`], whose signatures are checked at
//!   compile time against the function types `nvml-wrapper-sys` loads, and whose structures
//!   are `nvml-wrapper-sys`'s own. At `nvmlInit_v2` it reads its scenario from
//!   `fake-nvml-scenario.json` in its own directory, else from the file that the environment
//!   variable [`SCENARIO_ENV`] (`FAKE_NVML_SCENARIO`) names, else it plays the built-in healthy
//!   8-GPU H100 server. Reading the environment there is deliberate: the library stands in for
//!   the driver of the process under test, which has no other channel to it. It re-reads a
//!   changed file at the next `nvmlDeviceGetCount_v2`, so tests can change the world between
//!   two snapshots. It never panics across the C boundary (every export catches panics and
//!   answers `NVML_ERROR_UNKNOWN`) and never prints.
//! - The test helpers (`rlib`): [`FakeNvml`] installs a private copy of the library with a
//!   scenario (hiding the scenario's `missing_symbols` from the dynamic loader, as an older
//!   driver lacks them), and [`Scenario`] parses and checks scenario files, including the
//!   checked-in ones under `tests/scenarios/` ([`fixture`]).
//!
//! This is the one crate of the workspace that allows `unsafe` code: an NVML stand-in writes
//! through the raw pointers its callers pass. Every `unsafe` block says why it is sound.
#![allow(unsafe_code)]

mod error;
pub mod ffi;
mod install;
pub mod scenario;
mod state;

pub use error::{Error, Result};
pub use install::{
    BUILT_NAME, FakeNvml, LIBRARY_NAME, built_library, fixture, fixture_names, fixtures_dir,
};
pub use scenario::Scenario;
pub use state::{SCENARIO_ENV, SIDECAR};
