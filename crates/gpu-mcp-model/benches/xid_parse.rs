//! Xid parse throughput on a generated 100k-line kernel log (`/dev/kmsg` records).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpu_mcp_model::xid::parse_kernel_log;

const LINES: usize = 100_000;

/// A kernel log in `/dev/kmsg` form: mostly ordinary kernel messages, one line in ten an Xid.
fn kernel_log() -> Vec<u8> {
    let other = [
        "IPv6: ADDRCONF(NETDEV_CHANGE): cali3f2e1d0c9b8: link becomes ready",
        "EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode. Quota mode: none.",
        "nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver for UNIX platforms  570.133.20",
        "audit: type=1400 audit(1767268800.123:421): apparmor=\"STATUS\" operation=\"profile_load\"",
        "NVRM: GPU at PCI:0000:18:00: GPU-406321de-859e-c05d-60ab-c5de973c2c33",
    ];
    let xids = [
        "NVRM: Xid (PCI:0000:18:00): 13, pid=31337, name=python3, Graphics SM Warp Exception on (GPC 4, TPC 1, SM 0): Out Of Range Address",
        "NVRM: Xid (PCI:0000:2a:00): 79, pid=73102, name=pt_main_thread, GPU has fallen off the bus.",
        "NVRM: Xid (PCI:0000:3a:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No",
        "NVRM: Xid (PCI:0000:5d:00): 48, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
    ];
    let mut out = Vec::with_capacity(LINES * 110);
    for i in 0..LINES {
        let msg = if i % 10 == 0 {
            xids[(i / 10) % xids.len()]
        } else {
            other[i % other.len()]
        };
        out.extend_from_slice(format!("4,{i},{},-;{msg}\n", 1_000_000 + i * 1000).as_bytes());
    }
    out
}

fn bench(c: &mut Criterion) {
    let log = kernel_log();
    let mut g = c.benchmark_group("xid_parse");
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("kmsg_100k_lines", |b| {
        b.iter(|| {
            let out = parse_kernel_log(black_box(&log), None);
            assert_eq!(out.events.len(), LINES / 10);
            out
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
