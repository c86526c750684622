//! Heat and power: temperatures against the device's thresholds, clock events, power draw and
//! limits.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{ClockEventReason, GpuSnapshot, Reading};

use super::Assessment;

/// Rule `temperature`: against the device's own slowdown and shutdown thresholds.
pub fn temperature(g: &GpuSnapshot, a: &mut Assessment) {
    let Some(&t) = a.read(&g.temperature.gpu_c, "temperature") else {
        return;
    };
    let slowdown = g.temperature.slowdown_c.get();
    let shutdown = g.temperature.shutdown_c.get();
    let max_op = g.temperature.gpu_max_operating_c.get();
    if slowdown.is_none() && shutdown.is_none() && max_op.is_none() {
        a.not_checked
            .push("temperature: the device reports no thresholds".to_owned());
        return;
    }
    let cooling = "Check the node's cooling: fans, airflow, inlet temperature and blanking panels; drain the GPU if it keeps rising.";
    if let Some(sd) = shutdown
        && t + 2 >= sd
    {
        a.find(
            "temperature",
            Verdict::Critical,
            format!("GPU temperature {t} °C is within 2 °C of the shutdown threshold."),
            format!("{t} °C"),
            format!("shutdown {sd} °C − 2 °C (from the device)"),
            format!("Drain the GPU now to avoid a thermal shutdown. {cooling}"),
        );
    } else if let Some(sl) = slowdown
        && t >= sl
    {
        a.find(
            "temperature",
            Verdict::Degraded,
            format!("GPU temperature {t} °C is at or above the slowdown threshold: clocks are being reduced."),
            format!("{t} °C"),
            format!("slowdown {sl} °C (from the device)"),
            cooling,
        );
    } else if let Some(mo) = max_op
        && t > mo
    {
        a.find(
            "temperature",
            Verdict::Warning,
            format!("GPU temperature {t} °C is above the maximum operating temperature."),
            format!("{t} °C"),
            format!("max operating {mo} °C (from the device)"),
            cooling,
        );
    }
}

/// Rule `memory_temperature`: HBM temperature against the device's maximum.
pub fn memory_temperature(g: &GpuSnapshot, a: &mut Assessment) {
    let (Reading::Value(t), Reading::Value(max)) = (
        &g.temperature.memory_c,
        &g.temperature.memory_max_operating_c,
    ) else {
        return;
    };
    if t >= max {
        a.find(
            "memory_temperature",
            Verdict::Warning,
            format!("Memory temperature {t} °C is at or above its maximum operating temperature."),
            format!("{t} °C"),
            format!("memory max operating {max} °C (from the device)"),
            "Check the node's cooling; sustained memory overheating causes slowdown and memory errors.",
        );
    }
}

/// Rule `clock_events`: hardware slowdown, thermal slowdown and power brake.
pub fn clock_events(g: &GpuSnapshot, a: &mut Assessment) {
    let Some(reasons) = a.read(&g.clock_event_reasons, "clock_events") else {
        return;
    };
    let hw: Vec<ClockEventReason> = reasons
        .iter()
        .copied()
        .filter(|r| r.is_hardware_problem())
        .collect();
    let soft: Vec<&str> = reasons
        .iter()
        .filter(|r| {
            !r.is_hardware_problem()
                && **r != ClockEventReason::GpuIdle
                && **r != ClockEventReason::SwThermalSlowdown
        })
        .map(|r| r.as_str())
        .collect();
    if !soft.is_empty() {
        a.notes.push(format!(
            "Clocks limited by {} (normal under load).",
            soft.join(", ")
        ));
    }
    if reasons.contains(&ClockEventReason::SwThermalSlowdown) && hw.is_empty() {
        let temps = match (
            g.temperature.gpu_c.get(),
            g.temperature.gpu_max_operating_c.get(),
        ) {
            (Some(t), Some(m)) => format!(" (GPU {t} °C, maximum operating {m} °C)"),
            _ => String::new(),
        };
        a.find(
            "clock_events",
            Verdict::Warning,
            format!(
                "Software thermal slowdown: the driver lowers the clocks because the GPU or its memory is above the maximum operating temperature{temps}."
            ),
            "sw_thermal_slowdown",
            "no thermal slowdown reason active",
            "Check the node's cooling: fans, airflow, inlet temperature and blanking panels; the GPU runs slower until it cools down.",
        );
    }
    if hw.is_empty() {
        return;
    }
    let names: Vec<&str> = hw.iter().map(|r| r.as_str()).collect();
    let action = if hw.contains(&ClockEventReason::HwPowerBrakeSlowdown) {
        "The power-brake signal is asserted by the system (power supply or chassis): check the node's power supplies and their redundancy, and the BMC event log."
    } else if hw.contains(&ClockEventReason::HwThermalSlowdown) {
        "The GPU is throttling for temperature: check fans, airflow and inlet temperature."
    } else {
        "Hardware slowdown (thermal or power brake): check the node's cooling and power supplies and the BMC event log."
    };
    let clocks = match (g.clocks.sm_mhz.get(), g.clocks.max_sm_mhz.get()) {
        (Some(c), Some(m)) => format!(" (SM clock {c} of {m} MHz)"),
        _ => String::new(),
    };
    a.find(
        "clock_events",
        Verdict::Degraded,
        format!(
            "Hardware is slowing the clocks down: {}{clocks}.",
            names.join(", ")
        ),
        names.join(", "),
        "no hardware slowdown reason active",
        action,
    );
}

/// Rule `power`: draw above the enforced limit in two readings in a row (one sample over the
/// limit is a normal transient), and an enforced limit well below the configured one (a cap the
/// operator did not set). A limit the operator configured below the board default is a note.
pub fn power(g: &GpuSnapshot, a: &mut Assessment) {
    let limit = g
        .power
        .enforced_limit_w
        .get()
        .or_else(|| g.power.limit_w.get());
    if let (Some(draw), Some(limit)) = (g.power.draw_w.get(), limit)
        && draw > limit * 1.05
    {
        let before = g
            .since_previous
            .as_ref()
            .and_then(|c| c.previous_draw_w.zip(c.previous_limit_w));
        match before {
            Some((pd, pl)) if pd > pl * 1.05 => a.find(
                "power",
                Verdict::Warning,
                format!("Power draw {draw:.0} W is above the enforced limit in two readings in a row."),
                format!("{draw:.0} W now, {pd:.0} W at the previous reading"),
                format!("enforced limit {limit:.0} W + 5% (from the device), in two readings"),
                "Check the power-limit configuration and the power-monitoring circuit; contact the vendor if it persists.",
            ),
            _ => a.notes.push(format!(
                "One power sample of {draw:.0} W above the enforced limit {limit:.0} W (a transient unless the next reading is over the limit too)."
            )),
        }
    }
    let configured = g.power.limit_w.get();
    let default = g.power.default_limit_w.get();
    if let (Some(enforced), Some(configured)) = (g.power.enforced_limit_w.get(), configured)
        && enforced < configured * 0.8
    {
        a.find(
            "power_limit",
            Verdict::Warning,
            format!("The driver enforces {enforced:.0} W, well below the configured limit {configured:.0} W: something outside the GPU's own setting caps it, and workloads run slower."),
            format!("{enforced:.0} W"),
            format!("80% of the configured limit {configured:.0} W (from the device)"),
            "Check the system's power capping (BMC, chassis power budget, DCGM power policy) and the power supplies.",
        );
    } else if let (Some(limit), Some(default)) = (limit, default)
        && limit < default * 0.8
    {
        a.notes.push(format!(
            "Power limit set to {limit:.0} W of the board default {default:.0} W (a configured cap; reset it with nvidia-smi -pl if it is not intentional)."
        ));
    }
}
