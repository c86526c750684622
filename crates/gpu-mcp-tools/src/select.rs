//! Which GPUs a tool call asks about: the `gpu_index` / `gpu_uuid` filter shared by the tools.

use gpu_mcp_model::GpuSnapshot;
use gpu_mcp_protocol::CallToolResult;

/// Resolves a GPU filter against a snapshot; an `Err` is the `isError` result naming the argument.
pub(crate) fn select_gpus<'a>(
    gpus: &'a [GpuSnapshot],
    index: Option<u32>,
    uuid: Option<&str>,
) -> Result<Vec<&'a GpuSnapshot>, CallToolResult> {
    let range = if gpus.is_empty() {
        "this node has no GPUs".to_owned()
    } else {
        format!(
            "this node has {} GPU(s), indexes 0-{}",
            gpus.len(),
            gpus.len() - 1
        )
    };
    let mut sel: Vec<&GpuSnapshot> = gpus.iter().collect();
    if let Some(i) = index {
        sel.retain(|g| g.index == i);
        if sel.is_empty() {
            return Err(CallToolResult::error(format!(
                "Invalid argument `gpu_index`: GPU {i} does not exist; {range}."
            )));
        }
    }
    if let Some(u) = uuid {
        let u = u.trim();
        sel.retain(|g| g.uuid.value().is_some_and(|x| x.eq_ignore_ascii_case(u)));
        if sel.is_empty() {
            return Err(CallToolResult::error(format!(
                "Invalid argument `gpu_uuid`: no GPU on this node has UUID {u:?}; call get_gpu_inventory for the UUIDs."
            )));
        }
    }
    Ok(sel)
}
