//! Writing results into one `## <Section>` of `docs/benchmarks.md`, leaving the other sections alone.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

const HEADER: &str = "# Benchmarks\n\n\
Measured numbers, each section written by the command it names.\n\
Numbers depend on the machine and on what else runs on it: compare rows of one run, not runs.\n";

/// Replaces the body of `## {section}` in the markdown file at `path` with `body`
/// (creating the file or appending the section when missing).
pub(crate) fn write_section(path: &Path, section: &str, body: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let updated = replace_section(&existing, section, body);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

/// The text with the section `## {section}` (up to the next `## ` heading) replaced by `body`.
pub(crate) fn replace_section(text: &str, section: &str, body: &str) -> String {
    let heading = format!("## {section}");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == heading);
    let mut out = String::new();
    let new_section = format!("{heading}\n\n{}\n", body.trim_end());
    match start {
        Some(s) => {
            let end = lines[s + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |i| s + 1 + i);
            for l in &lines[..s] {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(&new_section);
            if end < lines.len() {
                out.push('\n');
                for l in &lines[end..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        None => {
            out.push_str(text.trim_end());
            out.push_str("\n\n");
            out.push_str(&new_section);
        }
    }
    out
}

/// `nproc`, the CPU model and the UTC date, for the record.
pub(crate) fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {} GiB RAM", kib / 1024 / 1024)
        });
    format!(
        "{cpus} CPUs (`nproc`), {model}{mem}; measured {}",
        utc_now()
    )
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_named_section() {
        let doc = "# B\n\nintro\n\n## Agent\n\nold\n\n## Kubernetes\n\nkeep me\n";
        let out = replace_section(doc, "Agent", "new");
        assert_eq!(
            out,
            "# B\n\nintro\n\n## Agent\n\nnew\n\n## Kubernetes\n\nkeep me\n"
        );
    }

    #[test]
    fn replaces_the_last_section_and_appends_missing_ones() {
        let doc = "# B\n\n## Agent\n\nold\n";
        assert_eq!(
            replace_section(doc, "Agent", "new\n"),
            "# B\n\n## Agent\n\nnew\n"
        );
        let out = replace_section(doc, "Gateway", "g");
        assert_eq!(out, "# B\n\n## Agent\n\nold\n\n## Gateway\n\ng\n");
    }

    #[test]
    fn machine_line_names_the_cpu_count() {
        assert!(machine_line().contains("CPUs"));
    }
}
