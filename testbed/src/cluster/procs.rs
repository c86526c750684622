//! Detached component processes: start, identify, measure and stop them by pid.
//!
//! A process counts as ours only while its command line mentions the cluster's state directory
//! (every component gets flags with paths inside it), so a recycled pid is never signalled.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Starts `program args...` detached from this process (its parent exits at once, so it is
/// re-parented to init and leaves no zombie), in its own process group, with stdin from
/// `/dev/null` and stdout/stderr appended to `log`. Returns its pid.
pub(crate) fn spawn_detached(
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
) -> anyhow::Result<u32> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#""$@" </dev/null >>"$GPU_MCP_LOG" 2>&1 & echo $!"#)
        .arg("sh")
        .arg(program)
        .args(args)
        .env("GPU_MCP_LOG", log)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0);
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    if !output.status.success() {
        bail!("starting {} failed ({})", program.display(), output.status);
    }
    let pid = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse::<u32>()
        .with_context(|| format!("reading the pid of {}", program.display()))?;
    Ok(pid)
}

/// The command line of a live, non-zombie process.
fn cmdline(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3 (after the parenthesised command name) is the state; `Z` is a zombie.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let mut raw = Vec::new();
    fs::File::open(format!("/proc/{pid}/cmdline"))
        .ok()?
        .read_to_end(&mut raw)
        .ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Whether `pid` is alive and either mentions `marker` (the state directory) in its command
/// line or runs in `<marker>exec` (commands started through `pods/exec` run there).
pub(crate) fn is_ours(pid: u32, marker: &str) -> bool {
    let Some(cmdline) = cmdline(pid) else {
        return false;
    };
    cmdline.contains(marker)
        || fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| cwd.starts_with(format!("{marker}exec")))
}

/// Every live process whose command line mentions `marker`: components of a run whose state
/// file was lost before it recorded them.
pub(crate) fn find_by_marker(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && is_ours(*pid, marker))
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops our process `pid` (SIGTERM, then SIGKILL after `grace`). Returns whether it was running.
pub(crate) fn stop(pid: u32, marker: &str, grace: Duration) -> bool {
    if !is_ours(pid, marker) {
        return false;
    }
    signal(pid, "-TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_ours(pid, marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, "-KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && is_ours(pid, marker) {
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_process_is_found_measured_and_stopped_by_marker() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-procs-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let marker = dir.display().to_string();
        let log = dir.join("sleep.log");
        // The marker travels as the shell's $0, so it shows in the command line.
        let pid = spawn_detached(
            Path::new("sh"),
            &[
                "-c".into(),
                "echo started; trap 'kill $!; exit 0' TERM; sleep 30 & wait".into(),
                format!("{marker}/sleeper"),
            ],
            &[],
            &log,
        )
        .unwrap();
        assert!(is_ours(pid, &marker));
        assert!(find_by_marker(&marker).contains(&pid));
        assert!(crate::util::process::rss_kib(pid).is_ok());
        assert!(!is_ours(pid, "/no/such/state/dir"));
        assert!(stop(pid, &marker, Duration::from_secs(5)));
        assert!(!is_ours(pid, &marker));
        assert!(!stop(pid, &marker, Duration::from_secs(1)));
        assert!(fs::read_to_string(&log).unwrap().contains("started"));

        // A process that only runs inside `<state>/exec` (as `pods/exec` commands do) is ours.
        let exec_dir = dir.join("exec");
        fs::create_dir_all(&exec_dir).unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .current_dir(&exec_dir)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(find_by_marker(&format!("{marker}/")).contains(&pid));
        assert!(stop(pid, &format!("{marker}/"), Duration::from_secs(5)));
        child.wait().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
