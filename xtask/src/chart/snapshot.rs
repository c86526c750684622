//! Renders against their committed snapshots: a line diff on drift, and `--bless` cleanup.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// `None` when the snapshot matches; otherwise a short line diff.
pub(super) fn diff(snapshot: &Path, actual: &str) -> Result<Option<String>> {
    let expected = match fs::read_to_string(snapshot) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some("  (the snapshot does not exist yet)".to_owned()));
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", snapshot.display())),
    };
    if expected == actual {
        return Ok(None);
    }
    Ok(Some(line_diff(&expected, actual, 40)))
}

/// A line diff of two texts (longest common subsequence): each changed line with its line number
/// in the snapshot (`-`) or in the new render (`+`), at most `limit` lines.
fn line_diff(expected: &str, actual: &str, limit: usize) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of e[i..] and a[j..].
    let mut lcs = vec![vec![0u32; a.len() + 1]; e.len() + 1];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i][j] = if e[i] == a[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            i += 1;
            j += 1;
        } else if j < a.len() && (i == e.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            lines.push(format!("  +{:>5} | {}", j + 1, a[j]));
            j += 1;
        } else {
            lines.push(format!("  -{:>5} | {}", i + 1, e[i]));
            i += 1;
        }
    }
    let more = lines.len().saturating_sub(limit);
    lines.truncate(limit);
    if more > 0 {
        lines.push(format!("  ... and {more} more changed lines"));
    }
    lines.join("\n")
}

/// Removes the snapshots of renders that no longer exist.
pub(super) fn remove_stale(dir: &Path, names: &[String]) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.extension() == Some(OsStr::new("yaml")) && !names.contains(&stem) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_shows_only_the_changed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n", 10);
        assert_eq!(d, "  -    2 | b\n  +    2 | B");
        // An insertion early on does not turn the rest of the file into changes.
        let d = line_diff("a\nb\nc\nd\n", "a\nnew\nb\nc\nD\n", 10);
        assert_eq!(d, "  +    2 | new\n  -    4 | d\n  +    5 | D");
        let many: String = (0..30).map(|i| format!("{i}\n")).collect();
        let d = line_diff("", &many, 5);
        assert!(d.ends_with("... and 25 more changed lines"), "{d}");
    }

    #[test]
    fn snapshot_drift_is_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-chart-snap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let snap = dir.join("x.yaml");
        assert!(
            diff(&snap, "a\n")
                .unwrap()
                .unwrap()
                .contains("does not exist")
        );
        fs::write(&snap, "a\n").unwrap();
        assert_eq!(diff(&snap, "a\n").unwrap(), None);
        assert!(diff(&snap, "b\n").unwrap().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }
}
