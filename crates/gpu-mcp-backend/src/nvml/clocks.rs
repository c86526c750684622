//! Clocks and activity: current and maximum clocks, clock-event (throttle) reasons,
//! utilisation and performance state.

use gpu_mcp_model::{ClockEventReason, Clocks, GpuAccess, Reading, Utilization};
use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::device::Clock;

use super::convert::{decode_clock_event_reasons, pstate, reading};

pub(super) fn read_clocks(dev: &Device<'_>, l: &mut GpuAccess) -> Clocks {
    Clocks {
        graphics_mhz: reading(dev.clock_info(Clock::Graphics), l),
        sm_mhz: reading(dev.clock_info(Clock::SM), l),
        memory_mhz: reading(dev.clock_info(Clock::Memory), l),
        max_graphics_mhz: reading(dev.max_clock_info(Clock::Graphics), l),
        max_sm_mhz: reading(dev.max_clock_info(Clock::SM), l),
        max_memory_mhz: reading(dev.max_clock_info(Clock::Memory), l),
    }
}

pub(super) fn read_clock_event_reasons(
    dev: &Device<'_>,
    l: &mut GpuAccess,
) -> Reading<Vec<ClockEventReason>> {
    reading(
        dev.current_throttle_reasons()
            .map(decode_clock_event_reasons),
        l,
    )
}

pub(super) fn read_utilization(dev: &Device<'_>, l: &mut GpuAccess) -> Reading<Utilization> {
    reading(
        dev.utilization_rates().map(|u| Utilization {
            gpu_percent: u.gpu,
            memory_percent: u.memory,
        }),
        l,
    )
}

pub(super) fn read_performance_state(dev: &Device<'_>, l: &mut GpuAccess) -> Reading<String> {
    reading(dev.performance_state().map(pstate), l)
}
