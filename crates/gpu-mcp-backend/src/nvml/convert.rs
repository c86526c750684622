//! From `nvml-wrapper` values to the model: results to [`Reading`]s, bit sets and enums to names.

use gpu_mcp_model::{ClockEventReason, ComputeMode, GpuAccess, Reading};
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{ComputeMode as NvComputeMode, PerformanceState};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;

/// How bad a GPU-wide state is, to keep the worst one a read saw.
fn rank(a: GpuAccess) -> u8 {
    match a {
        GpuAccess::Ok => 0,
        GpuAccess::NoPermission => 1,
        GpuAccess::Error => 2,
        GpuAccess::IrqIssue => 3,
        GpuAccess::InsufficientPower => 4,
        GpuAccess::ResetRequired => 5,
        GpuAccess::Unresponsive => 6,
        GpuAccess::Lost => 7,
    }
}

/// Keeps the worse of `worst` and `seen`.
pub(super) fn note(worst: &mut GpuAccess, seen: GpuAccess) {
    if rank(seen) > rank(*worst) {
        *worst = seen;
    }
}

/// The GPU-wide state an NVML error says the GPU is in, with its explanation; `None` for errors
/// that concern one query only.
pub(super) fn gpu_state(e: &NvmlError) -> Option<(GpuAccess, &'static str)> {
    Some(match e {
        NvmlError::GpuLost => (
            GpuAccess::Lost,
            "the driver reports the GPU as lost (NVML_ERROR_GPU_IS_LOST)",
        ),
        NvmlError::ResetRequired => (
            GpuAccess::ResetRequired,
            "the driver says the GPU requires a reset before it can be used again (NVML_ERROR_RESET_REQUIRED)",
        ),
        NvmlError::InsufficientPower => (
            GpuAccess::InsufficientPower,
            "the driver says the GPU's external power cables are not properly attached (NVML_ERROR_INSUFFICIENT_POWER)",
        ),
        NvmlError::IrqIssue => (
            GpuAccess::IrqIssue,
            "the driver detected an interrupt issue with the GPU (NVML_ERROR_IRQ_ISSUE)",
        ),
        _ => return None,
    })
}

/// Converts one NVML result into a [`Reading`], keeping in `worst` the worst GPU-wide state an
/// error reported (lost, reset required, insufficient power, interrupt issue).
pub fn reading<T>(r: std::result::Result<T, NvmlError>, worst: &mut GpuAccess) -> Reading<T> {
    match r {
        Ok(v) => Reading::Value(v),
        Err(NvmlError::NotSupported) => Reading::NotSupported,
        Err(e) => match gpu_state(&e) {
            Some((state, why)) => {
                note(worst, state);
                Reading::Error(why.to_owned())
            }
            None => Reading::Error(e.to_string()),
        },
    }
}

/// Decodes NVML's clock-event (throttle) reason bits.
pub fn decode_clock_event_reasons(bits: ThrottleReasons) -> Vec<ClockEventReason> {
    let table = [
        (ThrottleReasons::GPU_IDLE, ClockEventReason::GpuIdle),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            ClockEventReason::ApplicationsClocksSetting,
        ),
        (ThrottleReasons::SW_POWER_CAP, ClockEventReason::SwPowerCap),
        (ThrottleReasons::HW_SLOWDOWN, ClockEventReason::HwSlowdown),
        (ThrottleReasons::SYNC_BOOST, ClockEventReason::SyncBoost),
        (
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            ClockEventReason::SwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            ClockEventReason::HwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            ClockEventReason::HwPowerBrakeSlowdown,
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            ClockEventReason::DisplayClockSetting,
        ),
    ];
    table
        .into_iter()
        .filter(|(bit, _)| !bit.is_empty() && bits.contains(*bit))
        .map(|(_, r)| r)
        .collect()
}

pub(super) fn compute_mode(m: NvComputeMode) -> ComputeMode {
    match m {
        NvComputeMode::Default => ComputeMode::Default,
        NvComputeMode::ExclusiveThread => ComputeMode::ExclusiveThread,
        NvComputeMode::Prohibited => ComputeMode::Prohibited,
        NvComputeMode::ExclusiveProcess => ComputeMode::ExclusiveProcess,
    }
}

pub(super) fn pstate(p: PerformanceState) -> String {
    let n = match p {
        PerformanceState::Zero => 0,
        PerformanceState::One => 1,
        PerformanceState::Two => 2,
        PerformanceState::Three => 3,
        PerformanceState::Four => 4,
        PerformanceState::Five => 5,
        PerformanceState::Six => 6,
        PerformanceState::Seven => 7,
        PerformanceState::Eight => 8,
        PerformanceState::Nine => 9,
        PerformanceState::Ten => 10,
        PerformanceState::Eleven => 11,
        PerformanceState::Twelve => 12,
        PerformanceState::Thirteen => 13,
        PerformanceState::Fourteen => 14,
        PerformanceState::Fifteen => 15,
        PerformanceState::Unknown => return "unknown".to_owned(),
    };
    format!("P{n}")
}

pub(super) fn sample_u64(v: &SampleValue) -> u64 {
    match *v {
        SampleValue::U32(x) => u64::from(x),
        SampleValue::U64(x) => x,
        SampleValue::I64(x) => x.max(0) as u64,
        SampleValue::F64(x) => x.max(0.0) as u64,
    }
}

pub(super) fn milliwatts(
    r: std::result::Result<u32, NvmlError>,
) -> std::result::Result<f64, NvmlError> {
    r.map(|mw| f64::from(mw) / 1000.0)
}

/// `NvmlError` is not `Clone`; keep every unit variant, so that no error kind reads as another.
pub(super) fn clone_err(e: &NvmlError) -> NvmlError {
    match e {
        NvmlError::Uninitialized => NvmlError::Uninitialized,
        NvmlError::InvalidArg => NvmlError::InvalidArg,
        NvmlError::NotSupported => NvmlError::NotSupported,
        NvmlError::NoPermission => NvmlError::NoPermission,
        NvmlError::NotFound => NvmlError::NotFound,
        NvmlError::InsufficientSize(n) => NvmlError::InsufficientSize(*n),
        NvmlError::InsufficientPower => NvmlError::InsufficientPower,
        NvmlError::DriverNotLoaded => NvmlError::DriverNotLoaded,
        NvmlError::Timeout => NvmlError::Timeout,
        NvmlError::IrqIssue => NvmlError::IrqIssue,
        NvmlError::LibraryNotFound => NvmlError::LibraryNotFound,
        NvmlError::FunctionNotFound => NvmlError::FunctionNotFound,
        NvmlError::CorruptedInfoROM => NvmlError::CorruptedInfoROM,
        NvmlError::GpuLost => NvmlError::GpuLost,
        NvmlError::ResetRequired => NvmlError::ResetRequired,
        NvmlError::OperatingSystem => NvmlError::OperatingSystem,
        NvmlError::LibRmVersionMismatch => NvmlError::LibRmVersionMismatch,
        NvmlError::InUse => NvmlError::InUse,
        NvmlError::InsufficientMemory => NvmlError::InsufficientMemory,
        NvmlError::NoData => NvmlError::NoData,
        NvmlError::VgpuEccNotSupported => NvmlError::VgpuEccNotSupported,
        NvmlError::FailedToLoadSymbol(s) => NvmlError::FailedToLoadSymbol(s.clone()),
        NvmlError::UnexpectedVariant(v) => NvmlError::UnexpectedVariant(*v),
        _ => NvmlError::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_classify_nvml_errors() {
        let mut lost = GpuAccess::Ok;
        assert_eq!(reading(Ok(3), &mut lost), Reading::Value(3));
        assert_eq!(
            reading::<u32>(Err(NvmlError::NotSupported), &mut lost),
            Reading::NotSupported
        );
        assert_eq!(lost, GpuAccess::Ok);
        assert!(matches!(
            reading::<u32>(Err(NvmlError::ResetRequired), &mut lost),
            Reading::Error(_)
        ));
        assert_eq!(lost, GpuAccess::ResetRequired);
        assert!(matches!(
            reading::<u32>(Err(NvmlError::GpuLost), &mut lost),
            Reading::Error(_)
        ));
        assert_eq!(lost, GpuAccess::Lost);
        reading::<u32>(Err(NvmlError::IrqIssue), &mut lost);
        assert_eq!(lost, GpuAccess::Lost, "a worse state stays");
        assert!(matches!(
            reading::<u32>(Err(NvmlError::NoPermission), &mut GpuAccess::Ok),
            Reading::Error(e) if e.contains("permission") || !e.is_empty()
        ));
    }

    #[test]
    fn cloned_errors_keep_their_kind() {
        for e in [
            NvmlError::ResetRequired,
            NvmlError::InsufficientPower,
            NvmlError::IrqIssue,
            NvmlError::LibRmVersionMismatch,
            NvmlError::DriverNotLoaded,
            NvmlError::CorruptedInfoROM,
            NvmlError::InUse,
            NvmlError::NoData,
        ] {
            assert_eq!(clone_err(&e).to_string(), e.to_string());
        }
    }

    #[test]
    fn clock_event_reasons_decode_to_names() {
        let bits = ThrottleReasons::HW_SLOWDOWN
            | ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN
            | ThrottleReasons::SW_POWER_CAP;
        assert_eq!(
            decode_clock_event_reasons(bits),
            vec![
                ClockEventReason::SwPowerCap,
                ClockEventReason::HwSlowdown,
                ClockEventReason::HwPowerBrakeSlowdown
            ]
        );
        assert!(decode_clock_event_reasons(ThrottleReasons::NONE).is_empty());
    }

    #[test]
    fn performance_states_and_compute_modes_map() {
        assert_eq!(pstate(PerformanceState::Zero), "P0");
        assert_eq!(pstate(PerformanceState::Eight), "P8");
        assert_eq!(
            compute_mode(NvComputeMode::ExclusiveProcess),
            ComputeMode::ExclusiveProcess
        );
        assert_eq!(sample_u64(&SampleValue::I64(-3)), 0);
        assert_eq!(sample_u64(&SampleValue::U32(7)), 7);
    }
}
