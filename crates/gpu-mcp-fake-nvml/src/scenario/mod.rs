//! The scenario file: what the fake driver answers, per GPU and per call.
//!
//! A scenario starts from a built-in profile (an 8-GPU H100 SXM server with NVSwitch by
//! default), patches it per GPU with JSON merge patches (RFC 7396: a key set to `null` removes
//! the value, so the call answers `NOT_SUPPORTED`), and adds call outcomes (errors, delays),
//! an Xid event queue and missing symbols. [`Scenario::build`] turns it into one [`GpuSpec`] per
//! GPU.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

mod spec;
mod topology;

pub use spec::*;
pub use topology::*;

/// The built-in 8-GPU H100 SXM profile (one GPU; templates `{index}` and `{bus}` are filled in
/// per GPU).
const H100_SXM: &str = include_str!("../../profiles/h100-sxm.json");

/// PCI bus numbers of the eight GPUs of an HGX H100 baseboard, by index.
const HGX_BUSES: [u32; 8] = [0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb];

/// The CPUs of each socket of the HGX H100 host (two 56-core sockets with hyperthreads).
const SOCKET_CPUS: [&str; 2] = ["0-55,112-167", "56-111,168-223"];

/// Most GPUs a scenario may describe.
pub const MAX_GPUS: u32 = 64;

/// Most MIG device slots per GPU.
pub const MAX_MIG_SLOTS: u32 = 8;

/// A whole scenario, as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario plays (for people reading the file).
    #[serde(default)]
    pub description: String,
    /// The profile every GPU starts from: `h100-sxm` (default) or `empty` (every call
    /// `NOT_SUPPORTED` unless the patches set it).
    #[serde(default)]
    pub profile: Profile,
    /// Number of GPUs (default 8).
    #[serde(default)]
    pub gpu_count: Option<u32>,
    /// Driver-wide answers.
    #[serde(default)]
    pub system: SystemSpec,
    /// A merge patch applied to every GPU after the profile.
    #[serde(default)]
    pub all_gpus: Option<Value>,
    /// Merge patches per GPU index (`"3": {...}`), applied after `all_gpus`.
    #[serde(default)]
    pub gpus: BTreeMap<String, Value>,
    /// Outcomes of driver-wide calls by symbol (`nvmlInit_v2`, `nvmlDeviceGetCount_v2`,
    /// `nvmlSystemGetDriverVersion`, `nvmlEventSetCreate`, `nvmlEventSetWait_v2`, …).
    #[serde(default)]
    pub calls: BTreeMap<String, Outcome>,
    /// Events delivered by `nvmlEventSetWait_v2`, in order.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// Symbols an older driver lacks. [`crate::FakeNvml`] hides them from the dynamic loader
    /// in its copy of the library (the way an old `libnvidia-ml.so.1` lacks them); a library
    /// loaded without that step answers `FUNCTION_NOT_FOUND` from them instead.
    #[serde(default)]
    pub missing_symbols: Vec<String>,
    /// What the tests expect of this scenario; ignored by the library.
    #[serde(default)]
    pub expect: Option<Value>,
}

/// The starting point of every GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// NVIDIA H100 80GB HBM3 (SXM5) on an HGX baseboard with NVSwitch, healthy and idle.
    #[default]
    H100Sxm,
    /// Nothing: every call answers `NOT_SUPPORTED` unless the patches set a value.
    Empty,
}

/// Driver-wide values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    /// `nvmlSystemGetDriverVersion`.
    #[serde(default = "default_driver")]
    pub driver_version: Option<String>,
    /// `nvmlSystemGetNVMLVersion`.
    #[serde(default = "default_nvml")]
    pub nvml_version: Option<String>,
    /// `nvmlSystemGetCudaDriverVersion(_v2)`, e.g. 12080 for CUDA 12.8.
    #[serde(default = "default_cuda")]
    pub cuda_driver_version: Option<i32>,
}

fn default_driver() -> Option<String> {
    Some("570.124.06".to_owned())
}

fn default_nvml() -> Option<String> {
    Some("12.570.124.06".to_owned())
}

fn default_cuda() -> Option<i32> {
    Some(12080)
}

impl Default for SystemSpec {
    fn default() -> Self {
        Self {
            driver_version: default_driver(),
            nvml_version: default_nvml(),
            cuda_driver_version: default_cuda(),
        }
    }
}

/// How one call ends: optionally after a delay, optionally with an error, optionally only the
/// first `times` calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The NVML return code instead of success (`GPU_IS_LOST`, `RESET_REQUIRED`, …).
    #[serde(default)]
    pub error: Option<ErrorCode>,
    /// Sleep this long before answering (exercises deadlines and the busy guard).
    #[serde(default)]
    pub delay_ms: u64,
    /// Apply only to the first `times` calls, then answer normally.
    #[serde(default)]
    pub times: Option<u32>,
}

/// An NVML return code, written as its name without the `NVML_ERROR_` prefix (or a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u32);

/// NVML's return codes by name.
const ERROR_NAMES: &[(&str, u32)] = &[
    ("UNINITIALIZED", 1),
    ("INVALID_ARGUMENT", 2),
    ("NOT_SUPPORTED", 3),
    ("NO_PERMISSION", 4),
    ("ALREADY_INITIALIZED", 5),
    ("NOT_FOUND", 6),
    ("INSUFFICIENT_SIZE", 7),
    ("INSUFFICIENT_POWER", 8),
    ("DRIVER_NOT_LOADED", 9),
    ("TIMEOUT", 10),
    ("IRQ_ISSUE", 11),
    ("LIBRARY_NOT_FOUND", 12),
    ("FUNCTION_NOT_FOUND", 13),
    ("CORRUPTED_INFOROM", 14),
    ("GPU_IS_LOST", 15),
    ("RESET_REQUIRED", 16),
    ("OPERATING_SYSTEM", 17),
    ("LIB_RM_VERSION_MISMATCH", 18),
    ("IN_USE", 19),
    ("MEMORY", 20),
    ("NO_DATA", 21),
    ("VGPU_ECC_NOT_SUPPORTED", 22),
    ("INSUFFICIENT_RESOURCES", 23),
    ("FREQ_NOT_SUPPORTED", 24),
    ("ARGUMENT_VERSION_MISMATCH", 25),
    ("DEPRECATED", 26),
    ("NOT_READY", 27),
    ("GPU_NOT_FOUND", 28),
    ("INVALID_STATE", 29),
    ("UNKNOWN", 999),
];

impl ErrorCode {
    /// `NVML_ERROR_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: ErrorCode = ErrorCode(3);
    /// `NVML_ERROR_INVALID_ARGUMENT`.
    pub const INVALID_ARGUMENT: ErrorCode = ErrorCode(2);
    /// `NVML_ERROR_NOT_FOUND`.
    pub const NOT_FOUND: ErrorCode = ErrorCode(6);
    /// `NVML_ERROR_GPU_IS_LOST`.
    pub const GPU_IS_LOST: ErrorCode = ErrorCode(15);

    /// The code of a name such as `GPU_IS_LOST` (with or without `NVML_ERROR_`).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        let n = name.strip_prefix("NVML_ERROR_").unwrap_or(name);
        ERROR_NAMES
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|&(_, v)| ErrorCode(v))
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => ErrorCode::from_name(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown NVML return code {s:?}"))),
            Value::Number(n) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| v != 0)
                .map(ErrorCode)
                .ok_or_else(|| serde::de::Error::custom("an error code is a non-zero u32")),
            other => Err(serde::de::Error::custom(format!(
                "an error code is a name or a number, not {other}"
            ))),
        }
    }
}

/// A value or the error the driver answers instead.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Answer<T> {
    /// The call fails with this code.
    Error {
        /// The return code.
        error: ErrorCode,
    },
    /// The call succeeds with this value.
    Value(T),
}

impl<T: Copy> Answer<T> {
    /// The value, or the error code.
    pub fn get(&self) -> std::result::Result<T, ErrorCode> {
        match self {
            Answer::Value(v) => Ok(*v),
            Answer::Error { error } => Err(*error),
        }
    }
}

impl<T: Default> Default for Answer<T> {
    fn default() -> Self {
        Answer::Value(T::default())
    }
}

/// One event, or an error the wait returns instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The GPU the event is about (required unless `wait_error` is set).
    #[serde(default)]
    pub gpu: Option<u32>,
    /// The event data: the Xid for Xid events.
    #[serde(default)]
    pub xid: Option<u64>,
    /// The event type bits (default 8, `nvmlEventTypeXidCriticalError`).
    #[serde(default)]
    pub event_type: Option<u64>,
    /// The MIG GPU instance id (`0xFFFFFFFF` when absent).
    #[serde(default)]
    pub gpu_instance: Option<u32>,
    /// The MIG compute instance id (`0xFFFFFFFF` when absent).
    #[serde(default)]
    pub compute_instance: Option<u32>,
    /// Not delivered before this many milliseconds after `nvmlInit_v2`.
    #[serde(default)]
    pub after_ms: u64,
    /// After delivering the event, every call about the GPU answers `GPU_IS_LOST` (the GPU
    /// fell off the bus).
    #[serde(default)]
    pub then_lost: bool,
    /// Instead of an event, the wait returns this code.
    #[serde(default)]
    pub wait_error: Option<ErrorCode>,
    /// How many waits return `wait_error` (default 1).
    #[serde(default)]
    pub count: Option<u32>,
}

/// A scenario ready to answer calls.
#[derive(Debug, Clone)]
pub struct Built {
    /// The scenario as written.
    pub scenario: Scenario,
    /// One spec per GPU, by index.
    pub gpus: Vec<GpuSpec>,
}

impl Scenario {
    /// Parses a scenario file's text.
    pub fn from_json(text: &str) -> Result<Scenario> {
        serde_json::from_str(text).map_err(|e| Error::Scenario(e.to_string()))
    }

    /// Resolves the profile and the patches into one spec per GPU, checking everything a call
    /// would otherwise trip over.
    pub fn build(self) -> Result<Built> {
        let count = self.gpu_count.unwrap_or(8);
        if count > MAX_GPUS {
            return Err(Error::Scenario(format!(
                "gpu_count {count} is above {MAX_GPUS}"
            )));
        }
        for key in self.gpus.keys() {
            match key.parse::<u32>() {
                Ok(i) if i < count => {}
                _ => {
                    return Err(Error::Scenario(format!(
                        "gpus.{key}: not a GPU index below gpu_count {count}"
                    )));
                }
            }
        }
        for (n, ev) in self.events.iter().enumerate() {
            let valid = match (ev.wait_error, ev.gpu, ev.xid) {
                (Some(_), None, None) => true,
                (None, Some(g), Some(_)) => g < count,
                _ => false,
            };
            if !valid {
                return Err(Error::Scenario(format!(
                    "events[{n}]: give either wait_error, or gpu (below {count}) and xid"
                )));
            }
        }
        let profile: Value = match self.profile {
            Profile::H100Sxm => serde_json::from_str(H100_SXM)
                .map_err(|e| Error::Scenario(format!("built-in profile: {e}")))?,
            Profile::Empty => Value::Object(serde_json::Map::new()),
        };
        let mut gpus = Vec::with_capacity(count as usize);
        for i in 0..count {
            let mut v = profile.clone();
            if let Some(p) = &self.all_gpus {
                merge_patch(&mut v, p);
            }
            if let Some(p) = self.gpus.get(&i.to_string()) {
                merge_patch(&mut v, p);
            }
            fill_templates(&mut v, i, count);
            let spec: GpuSpec =
                serde_json::from_value(v).map_err(|e| Error::Scenario(format!("GPU {i}: {e}")))?;
            spec.check(i)?;
            gpus.push(spec);
        }
        Ok(Built {
            scenario: self,
            gpus,
        })
    }
}

impl GpuSpec {
    fn check(&self, index: u32) -> Result<()> {
        for key in self.fields.keys() {
            if parse_field_key(key).is_none() {
                return Err(Error::Scenario(format!(
                    "GPU {index}: field key {key:?} is not `ID` or `ID:SCOPE`"
                )));
            }
        }
        for key in self.p2p_peers.keys() {
            if key.parse::<u32>().is_err() {
                return Err(Error::Scenario(format!(
                    "GPU {index}: p2p_peers key {key:?} is not a GPU index"
                )));
            }
        }
        if let Some(list) = &self.cpu_affinity
            && crate::scenario::parse_cpulist(list).is_none()
        {
            return Err(Error::Scenario(format!(
                "GPU {index}: cpu_affinity {list:?} is not a cpulist such as 0-55,112-167"
            )));
        }
        for m in &self.mig.instances {
            if m.slot >= MAX_MIG_SLOTS {
                return Err(Error::Scenario(format!(
                    "GPU {index}: MIG slot {} is above {}",
                    m.slot,
                    MAX_MIG_SLOTS - 1
                )));
            }
        }
        Ok(())
    }

    /// The answer for field `id` with scope `scope`, `None` when the scenario leaves it out.
    pub fn field(&self, id: u32, scope: u32) -> Option<&Answer<serde_json::Number>> {
        self.fields
            .iter()
            .find(|(k, _)| parse_field_key(k) == Some((id, Some(scope))))
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|(k, _)| parse_field_key(k) == Some((id, None)))
            })
            .map(|(_, v)| v)
    }
}

/// `"82"` → `(82, None)`, `"165:3"` → `(165, Some(3))`.
fn parse_field_key(k: &str) -> Option<(u32, Option<u32>)> {
    match k.split_once(':') {
        Some((id, scope)) => Some((id.trim().parse().ok()?, Some(scope.trim().parse().ok()?))),
        None => Some((k.trim().parse().ok()?, None)),
    }
}

/// The CPUs of a cpulist (`0-55,112-167`), or `None` when it is not one.
pub fn parse_cpulist(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a || b >= 4096 {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Replaces `{index}`, `{bus}` and `{bus_lc}` (the GPU's PCI bus number as two upper- or
/// lower-case hex digits) and `{socket_cpus}` (the CPUs of the GPU's socket) in every string;
/// a string that is only `{index}` or `{socket}` (0 for the first half of the GPUs, 1 for the
/// rest) becomes that number.
fn fill_templates(v: &mut Value, index: u32, count: u32) {
    let socket = u32::from(index >= count.div_ceil(2).max(1));
    match v {
        Value::String(s) if s == "{index}" => *v = Value::from(index),
        Value::String(s) if s == "{socket}" => *v = Value::from(socket),
        Value::String(s) if s.contains('{') => {
            let bus = HGX_BUSES
                .get(index as usize)
                .copied()
                .unwrap_or(0xc0 + index);
            *s = s
                .replace("{index}", &index.to_string())
                .replace("{bus}", &format!("{:02X}", bus & 0xff))
                .replace("{bus_lc}", &format!("{:02x}", bus & 0xff))
                .replace("{socket_cpus}", SOCKET_CPUS[socket as usize]);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill_templates(x, index, count)),
        Value::Object(o) => o.values_mut().for_each(|x| fill_templates(x, index, count)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_is_eight_distinct_healthy_h100s() {
        let b = Scenario::default().build().unwrap();
        assert_eq!(b.gpus.len(), 8);
        let uuids: std::collections::HashSet<_> =
            b.gpus.iter().map(|g| g.uuid.clone().unwrap()).collect();
        assert_eq!(uuids.len(), 8);
        assert_eq!(b.gpus[0].pci.as_ref().unwrap().bus_id, "00000000:18:00.0");
        assert_eq!(b.gpus[7].pci.as_ref().unwrap().bus_id, "00000000:DB:00.0");
        assert_eq!(b.gpus[3].nvlinks.as_ref().unwrap().len(), 18);
    }

    #[test]
    fn patches_merge_and_null_removes() {
        let s = Scenario::from_json(
            r#"{"gpus": {"2": {"temperature": 91, "persistence_mode": null,
                "nvlinks": [{"state": "down"}]}}}"#,
        )
        .unwrap();
        let b = s.build().unwrap();
        assert_eq!(b.gpus[2].temperature, Some(91));
        assert_eq!(b.gpus[2].persistence_mode, None);
        assert_eq!(b.gpus[2].nvlinks.as_ref().unwrap().len(), 1);
        assert_eq!(b.gpus[1].persistence_mode, Some(true));
    }

    #[test]
    fn answers_and_codes_parse() {
        let s = Scenario::from_json(
            r#"{"gpus": {"0": {"fields": {"142": {"error": "NVML_ERROR_NO_PERMISSION"}, "165:3": 1},
                "calls": {"*": {"error": "RESET_REQUIRED", "times": 2, "delay_ms": 5}}}}}"#,
        )
        .unwrap();
        let b = s.build().unwrap();
        let g = &b.gpus[0];
        assert!(matches!(
            g.field(142, 0),
            Some(Answer::Error {
                error: ErrorCode(4)
            })
        ));
        assert!(matches!(g.field(165, 3), Some(Answer::Value(_))));
        assert!(g.field(165, 4).is_none());
        assert_eq!(g.calls["*"].error, Some(ErrorCode(16)));
    }

    #[test]
    fn mistakes_are_refused_with_the_place() {
        for (text, needle) in [
            (r#"{"gpus": {"9": {}}}"#, "gpus.9"),
            (r#"{"gpus": {"1": {"temprature": 3}}}"#, "GPU 1"),
            (r#"{"calls": {"nvmlInit_v2": {"error": "NOPE"}}}"#, "NOPE"),
            (r#"{"events": [{"xid": 79}]}"#, "events[0]"),
            (r#"{"gpus": {"0": {"fields": {"x": 1}}}}"#, "field key"),
        ] {
            let e = Scenario::from_json(text)
                .and_then(Scenario::build)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
