//! Memory and its health: frame-buffer and BAR1 use, ECC mode and counts, retired pages, row
//! remapping.

use gpu_mcp_model::{Ecc, EccCounts, GpuAccess, MemoryUsage, Reading, RetiredPages, RowRemapping};
use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, RetirementCause};
use nvml_wrapper::error::NvmlError;

use super::convert::{clone_err, reading};
use super::fields::{Field, FieldValues};

/// A GPU's memory fields.
pub(super) struct MemoryGroup {
    pub(super) memory: Reading<MemoryUsage>,
    pub(super) bar1: Reading<MemoryUsage>,
    pub(super) ecc: Ecc,
    pub(super) retired_pages: Reading<RetiredPages>,
    pub(super) row_remapping: Reading<RowRemapping>,
}

pub(super) fn read_memory(
    dev: &Device<'_>,
    fields: &FieldValues,
    l: &mut GpuAccess,
) -> MemoryGroup {
    MemoryGroup {
        memory: reading(
            dev.memory_info().map(|m| MemoryUsage {
                total_bytes: m.total,
                used_bytes: m.used,
                free_bytes: m.free,
            }),
            l,
        ),
        bar1: reading(
            dev.bar1_memory_info().map(|m| MemoryUsage {
                total_bytes: m.total,
                used_bytes: m.used,
                free_bytes: m.free,
            }),
            l,
        ),
        ecc: read_ecc(dev, l),
        retired_pages: reading(retired_pages(dev), l),
        row_remapping: reading(row_remapping(fields), l),
    }
}

fn read_ecc(dev: &Device<'_>, l: &mut GpuAccess) -> Ecc {
    let ecc_counts = |c: EccCounter| -> Result<EccCounts, NvmlError> {
        Ok(EccCounts {
            corrected: dev.total_ecc_errors(MemoryError::Corrected, c)?,
            uncorrected: dev.total_ecc_errors(MemoryError::Uncorrected, c)?,
        })
    };
    let ecc_mode = dev.is_ecc_enabled();
    Ecc {
        enabled: reading(
            ecc_mode
                .as_ref()
                .map(|m| m.currently_enabled)
                .map_err(clone_err),
            l,
        ),
        pending_enabled: reading(
            ecc_mode
                .as_ref()
                .map(|m| m.pending_enabled)
                .map_err(clone_err),
            l,
        ),
        volatile: reading(ecc_counts(EccCounter::Volatile), l),
        aggregate: reading(ecc_counts(EccCounter::Aggregate), l),
    }
}

fn retired_pages(dev: &Device<'_>) -> Result<RetiredPages, NvmlError> {
    Ok(RetiredPages {
        single_bit_ecc: dev
            .retired_pages(RetirementCause::MultipleSingleBitEccErrors)?
            .len() as u64,
        double_bit_ecc: dev.retired_pages(RetirementCause::DoubleBitEccError)?.len() as u64,
        pending: dev.are_pages_pending_retired()?,
    })
}

fn row_remapping(fields: &FieldValues) -> Result<RowRemapping, NvmlError> {
    Ok(RowRemapping {
        correctable: fields.get(Field::RemappedCorrectable)?,
        uncorrectable: fields.get(Field::RemappedUncorrectable)?,
        pending: fields.get(Field::RemappedPending)? != 0,
        failed: fields.get(Field::RemappedFailure)? != 0,
    })
}
