//! Counter increases between two readings of one GPU: what the backend reports next to NVML's
//! cumulative counters so the rules judge what is happening now.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::snapshot::{GpuAccess, GpuSnapshot, NvLink};

/// Increases of the cumulative counters between two readings of one GPU.
///
/// NVML's counters count since the driver loaded (ECC volatile, PCIe replays, NVLink errors):
/// a total alone cannot tell an old burst from a link erroring now. A counter that went down
/// (the driver was reloaded) counts its new value as the increase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CounterChanges {
    /// Time between the two readings, in milliseconds.
    pub interval_ms: u64,
    /// New PCIe replays, when both readings had the counter.
    pub pcie_replays: Option<u64>,
    /// New volatile uncorrected ECC errors, when both readings had the count.
    pub ecc_uncorrected: Option<u64>,
    /// New NVLink errors per link present in both readings.
    pub nvlink: Vec<LinkChanges>,
    /// Power draw at the previous reading, in watts.
    pub previous_draw_w: Option<f64>,
    /// Enforced power limit at the previous reading, in watts.
    pub previous_limit_w: Option<f64>,
}

/// New errors on one NVLink link between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LinkChanges {
    /// Link number.
    pub link: u32,
    /// New data-link replay errors.
    pub replay: Option<u64>,
    /// New data-link recovery errors.
    pub recovery: Option<u64>,
    /// New CRC errors (flit and data).
    pub crc: Option<u64>,
}

fn increase(before: Option<u64>, now: Option<u64>) -> Option<u64> {
    let (b, n) = (before?, now?);
    Some(if n >= b { n - b } else { n })
}

impl CounterChanges {
    /// The changes from `before` to `now`, `interval_ms` apart; `None` when the two readings
    /// are not of the same GPU (a different UUID) or either could not be read.
    pub fn between(before: &GpuSnapshot, now: &GpuSnapshot, interval_ms: u64) -> Option<Self> {
        if before.access != GpuAccess::Ok || now.access != GpuAccess::Ok {
            return None;
        }
        if before.uuid.value() != now.uuid.value() {
            return None;
        }
        let links_before = before.nvlink.value().map(Vec::as_slice).unwrap_or(&[]);
        let nvlink = now
            .nvlink
            .value()
            .into_iter()
            .flatten()
            .filter_map(|l| {
                let b = links_before.iter().find(|x| x.link == l.link)?;
                let crc = |x: &NvLink| {
                    x.crc_flit_errors
                        .get()
                        .zip(x.crc_data_errors.get())
                        .map(|(f, d)| f + d)
                        .or_else(|| x.crc_flit_errors.get())
                        .or_else(|| x.crc_data_errors.get())
                };
                Some(LinkChanges {
                    link: l.link,
                    replay: increase(b.replay_errors.get(), l.replay_errors.get()),
                    recovery: increase(b.recovery_errors.get(), l.recovery_errors.get()),
                    crc: increase(crc(b), crc(l)),
                })
            })
            .collect();
        let unc = |g: &GpuSnapshot| g.ecc.volatile.get().map(|c| c.uncorrected);
        Some(Self {
            interval_ms,
            pcie_replays: increase(
                before.pcie.replay_counter.get(),
                now.pcie.replay_counter.get(),
            ),
            ecc_uncorrected: increase(unc(before), unc(now)),
            nvlink,
            previous_draw_w: before.power.draw_w.get(),
            previous_limit_w: before
                .power
                .enforced_limit_w
                .get()
                .or_else(|| before.power.limit_w.get()),
        })
    }
}
