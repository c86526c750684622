//! The counters read in one `nvmlDeviceGetFieldValues` call.

use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;

use super::convert::{clone_err, sample_u64};

/// Field ids read through `nvmlDeviceGetFieldValues`.
const FI_MEMORY_TEMP: u32 = 82;
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
const FI_RECOVERY_ACTION: u32 = 230;
/// `NVML_FI_DEV_NVLINK_LINK_COUNT`: links that are enabled (up or down, not disabled).
const FI_NVLINK_LINK_COUNT: u32 = 91;

/// One counter of the batch (its position in the request).
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
    MemoryTemp = 0,
    RemappedCorrectable = 1,
    RemappedUncorrectable = 2,
    RemappedPending = 3,
    RemappedFailure = 4,
    RecoveryAction = 5,
    NvlinkLinkCount = 6,
}

/// The batch's answer: one result per field, or the error of the whole call.
pub(super) struct FieldValues(Result<Vec<Result<FieldValueSample, NvmlError>>, NvmlError>);

impl FieldValues {
    /// One driver call for several counters.
    pub(super) fn read(dev: &Device<'_>) -> Self {
        Self(dev.field_values_for(&[
            FieldId(FI_MEMORY_TEMP),
            FieldId(FI_REMAPPED_COR),
            FieldId(FI_REMAPPED_UNC),
            FieldId(FI_REMAPPED_PENDING),
            FieldId(FI_REMAPPED_FAILURE),
            FieldId(FI_RECOVERY_ACTION),
            FieldId(FI_NVLINK_LINK_COUNT),
        ]))
    }

    /// One counter's value, or the error of that field or of the whole call.
    pub(super) fn get(&self, field: Field) -> Result<u64, NvmlError> {
        match &self.0 {
            Ok(v) => match v.get(field as usize) {
                Some(Ok(s)) => match &s.value {
                    Ok(x) => Ok(sample_u64(x)),
                    Err(e) => Err(clone_err(e)),
                },
                Some(Err(e)) => Err(clone_err(e)),
                None => Err(NvmlError::NotSupported),
            },
            Err(e) => Err(clone_err(e)),
        }
    }
}
