//! The test side: a private copy of the built library with its scenario.
//!
//! Every [`FakeNvml`] copies `libgpu_mcp_fake_nvml.so` into a directory of its own, named
//! `libnvidia-ml.so.1`. The dynamic loader opens each copy as a separate object, so each test
//! gets its own library state even when many run in one process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ffi::EXPORTED;
use crate::scenario::Scenario;
use crate::state::SIDECAR;
use crate::{Error, Result};

/// The file name of the built library.
pub const BUILT_NAME: &str = "libgpu_mcp_fake_nvml.so";

/// The name each copy gets, the one the real library has.
pub const LIBRARY_NAME: &str = "libnvidia-ml.so.1";

/// Symbols `nvml-wrapper` calls from `Drop` without checking that they loaded: hiding them
/// would make the caller panic, not play an old driver.
const REQUIRED: &[&str] = &["nvmlShutdown", "nvmlEventSetFree"];

static NEXT: AtomicU32 = AtomicU32::new(0);

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The library built beside the running test binary (`target/<profile>/deps/`).
pub fn built_library() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(io("locate", Path::new("the test binary")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    [
        dir.to_owned(),
        dir.join("deps"),
        dir.join("..").join("deps"),
    ]
    .into_iter()
    .map(|d| d.join(BUILT_NAME))
    .find(|p| p.is_file())
    .ok_or_else(|| Error::NotBuilt {
        exe: exe.display().to_string(),
    })
}

/// The checked-in scenario files (`tests/scenarios/` of this crate).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// The text of the checked-in scenario `name` (without `.json`).
pub fn fixture(name: &str) -> Result<String> {
    let path = fixtures_dir().join(format!("{name}.json"));
    std::fs::read_to_string(&path).map_err(io("read", &path))
}

/// The names of every checked-in scenario, sorted.
pub fn fixture_names() -> Result<Vec<String>> {
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io("list", &dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// A private copy of the fake library and its scenario; removed on drop.
#[derive(Debug)]
pub struct FakeNvml {
    dir: PathBuf,
    library: PathBuf,
    scenario: PathBuf,
}

impl FakeNvml {
    /// Installs a copy whose scenario lies beside it (the library reads it at `nvmlInit_v2`).
    pub fn install(scenario_json: &str) -> Result<FakeNvml> {
        Self::install_as(scenario_json, SIDECAR)
    }

    /// Installs a copy with the checked-in scenario `name` beside it.
    pub fn install_fixture(name: &str) -> Result<FakeNvml> {
        Self::install(&fixture(name)?)
    }

    /// Installs a copy whose scenario only [`crate::SCENARIO_ENV`] names: run the process
    /// under test with that variable set to [`FakeNvml::scenario_path`].
    pub fn install_for_env(scenario_json: &str) -> Result<FakeNvml> {
        Self::install_as(scenario_json, "scenario.json")
    }

    fn install_as(scenario_json: &str, file: &str) -> Result<FakeNvml> {
        let scenario = Scenario::from_json(scenario_json)?;
        let missing = scenario.missing_symbols.clone();
        scenario.build()?;
        let built = built_library()?;
        let base = built
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("fake-nvml");
        let dir = base.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left by an earlier process with the same id is stale.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let me = FakeNvml {
            library: dir.join(LIBRARY_NAME),
            scenario: dir.join(file),
            dir,
        };
        let mut bytes = std::fs::read(&built).map_err(io("read", &built))?;
        for symbol in &missing {
            hide_symbol(&mut bytes, symbol)?;
        }
        std::fs::write(&me.library, &bytes).map_err(io("write", &me.library))?;
        me.write_scenario(scenario_json)?;
        Ok(me)
    }

    /// The copy to load (`--nvml-library-path`, `NvmlOptions::library_path`).
    pub fn library_path(&self) -> &Path {
        &self.library
    }

    /// The scenario file.
    pub fn scenario_path(&self) -> &Path {
        &self.scenario
    }

    /// Replaces the scenario; the library picks it up at its next `nvmlDeviceGetCount_v2`
    /// (the start of the next snapshot). Symbols stay as installed.
    pub fn update(&self, scenario_json: &str) -> Result<()> {
        Scenario::from_json(scenario_json)?.build()?;
        self.write_scenario(scenario_json)
    }

    fn write_scenario(&self, text: &str) -> Result<()> {
        // Written aside and renamed, so the library never reads half a file.
        let tmp = self.dir.join(".scenario.tmp");
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &self.scenario).map_err(io("write", &self.scenario))
    }
}

impl Drop for FakeNvml {
    fn drop(&mut self) {
        // A copy still loaded stays mapped after its file is removed.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Renames `symbol` in the library's string tables, so the dynamic loader no longer finds it
/// (its hash lookup compares the names), as in a driver that predates it.
fn hide_symbol(bytes: &mut [u8], symbol: &str) -> Result<()> {
    let err = |reason| Error::Symbol {
        symbol: symbol.to_owned(),
        reason,
    };
    if REQUIRED.contains(&symbol) {
        return Err(err(
            "nvml-wrapper calls it unchecked when it drops its handles",
        ));
    }
    if !EXPORTED.contains(&symbol) {
        return Err(err("the fake library does not export it"));
    }
    let needle: Vec<u8> = [&[0u8][..], symbol.as_bytes(), &[0u8][..]].concat();
    let mut found = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        let start = i + at + 1;
        // `nvml…` becomes `Xvml…`: same length, so every offset stays valid.
        bytes[start] = b'X';
        found += 1;
        i = start;
    }
    if found == 0 {
        return Err(err("its name is not in the library's string table"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiding_renames_every_copy_of_the_name_only() {
        let mut b = b"\0nvmlDeviceGetFieldValues\0nvmlDeviceGetFieldValuesX\0".to_vec();
        hide_symbol(&mut b, "nvmlDeviceGetFieldValues").unwrap();
        assert_eq!(
            &b[..],
            b"\0XvmlDeviceGetFieldValues\0nvmlDeviceGetFieldValuesX\0"
        );
    }

    #[test]
    fn symbols_the_wrapper_needs_cannot_be_hidden() {
        let mut b = b"\0nvmlShutdown\0".to_vec();
        assert!(hide_symbol(&mut b, "nvmlShutdown").is_err());
        assert!(hide_symbol(&mut b, "nvmlNotAThing").is_err());
    }

    #[test]
    fn every_fixture_parses_and_builds() {
        let names = fixture_names().unwrap();
        assert!(!names.is_empty());
        for name in names {
            Scenario::from_json(&fixture(&name).unwrap())
                .and_then(Scenario::build)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
