//! The matrices as `nvidia-smi topo -m` and `nvidia-smi topo -p2p` print them.

use gpu_mcp_model::{GpuSnapshot, P2pStatus, Reading};

use super::Pair;

/// The matrix rows: a header, then one row per GPU, as `nvidia-smi topo -m` prints them.
pub(super) fn matrix(gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> Vec<String> {
    let word = |a: u32, b: u32| -> String {
        if a == b {
            return "X".to_owned();
        }
        pairs
            .iter()
            .find(|p| (p.a.index, p.b.index) == (a.min(b), a.max(b)))
            .map_or_else(|| "?".to_owned(), Pair::word)
    };
    grid(gpus, &word, true)
}

/// The P2P rows (`nvidia-smi topo -p2p` codes, read and write together).
pub(super) fn p2p_matrix(gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> Vec<String> {
    let cell = |a: u32, b: u32| -> String {
        if a == b {
            return "X".to_owned();
        }
        // Row `a`'s own view of its path to `b`, else `b`'s.
        let Some(path) = pairs
            .iter()
            .find(|p| (p.a.index, p.b.index) == (a.min(b), a.max(b)))
            .and_then(|p| {
                let (mine, theirs) = if p.a.index == a {
                    (p.both[0], p.both[1])
                } else {
                    (p.both[1], p.both[0])
                };
                mine.filter(|x| x.p2p_read.value().is_some())
                    .or(theirs.filter(|x| x.p2p_read.value().is_some()))
                    .or(mine)
                    .or(theirs)
            })
        else {
            return "?".to_owned();
        };
        let code = |x: &Reading<P2pStatus>| x.get().map_or("?", P2pStatus::code);
        let (r, w) = (code(&path.p2p_read), code(&path.p2p_write));
        if r == w {
            r.to_owned()
        } else {
            format!("r:{r}/w:{w}")
        }
    };
    grid(gpus, &cell, false)
}

/// Rows of `cell(a, b)` under a `GPU0 GPU1 ...` header, with CPU and NUMA affinity columns.
fn grid(gpus: &[GpuSnapshot], cell: &dyn Fn(u32, u32) -> String, affinity: bool) -> Vec<String> {
    let cells: Vec<Vec<String>> = gpus
        .iter()
        .map(|a| gpus.iter().map(|b| cell(a.index, b.index)).collect())
        .collect();
    let width = cells
        .iter()
        .flatten()
        .map(String::len)
        .chain(gpus.iter().map(|g| format!("GPU{}", g.index).len()))
        .max()
        .unwrap_or(4)
        + 2;
    let label = gpus
        .iter()
        .map(|g| format!("GPU{}", g.index).len())
        .max()
        .unwrap_or(4)
        + 2;
    let mut header = format!("{:label$}", "");
    for g in gpus {
        header.push_str(&format!("{:<width$}", format!("GPU{}", g.index)));
    }
    let cpu_width = gpus
        .iter()
        .filter_map(|g| g.topology.cpu_affinity.value().map(String::len))
        .max()
        .unwrap_or(3)
        .max("CPU Affinity".len())
        + 2;
    if affinity {
        header.push_str(&format!("{:<cpu_width$}NUMA Affinity", "CPU Affinity"));
    }
    let mut rows = vec![header.trim_end().to_owned()];
    for (g, row) in gpus.iter().zip(cells) {
        let mut line = format!("{:<label$}", format!("GPU{}", g.index));
        for c in row {
            line.push_str(&format!("{c:<width$}"));
        }
        if affinity {
            let cpus = g
                .topology
                .cpu_affinity
                .value()
                .map_or("N/A", String::as_str);
            let numa = g
                .topology
                .numa_node
                .get()
                .map_or_else(|| "N/A".to_owned(), |n| n.to_string());
            line.push_str(&format!("{cpus:<cpu_width$}{numa}"));
        }
        rows.push(line.trim_end().to_owned());
    }
    rows
}
