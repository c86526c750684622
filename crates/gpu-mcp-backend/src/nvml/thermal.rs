//! Temperatures with the device's thresholds, and power draw with its limits.

use gpu_mcp_model::{GpuAccess, Power, Temperature};
use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::device::{TemperatureSensor, TemperatureThreshold};

use super::convert::{milliwatts, reading};
use super::fields::{Field, FieldValues};

pub(super) fn read_temperature(
    dev: &Device<'_>,
    fields: &FieldValues,
    l: &mut GpuAccess,
) -> Temperature {
    Temperature {
        gpu_c: reading(dev.temperature(TemperatureSensor::Gpu), l),
        memory_c: reading(fields.get(Field::MemoryTemp).map(|v| v as u32), l),
        slowdown_c: reading(dev.temperature_threshold(TemperatureThreshold::Slowdown), l),
        shutdown_c: reading(dev.temperature_threshold(TemperatureThreshold::Shutdown), l),
        gpu_max_operating_c: reading(dev.temperature_threshold(TemperatureThreshold::GpuMax), l),
        memory_max_operating_c: reading(
            dev.temperature_threshold(TemperatureThreshold::MemoryMax),
            l,
        ),
    }
}

pub(super) fn read_power(dev: &Device<'_>, l: &mut GpuAccess) -> Power {
    Power {
        draw_w: reading(milliwatts(dev.power_usage()), l),
        limit_w: reading(milliwatts(dev.power_management_limit()), l),
        default_limit_w: reading(milliwatts(dev.power_management_limit_default()), l),
        enforced_limit_w: reading(milliwatts(dev.enforced_power_limit()), l),
    }
}
