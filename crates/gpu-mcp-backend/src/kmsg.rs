//! Reads the kernel log from `/dev/kmsg` (or a file in the same or `dmesg` format) without ever
//! blocking the async runtime.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use gpu_mcp_model::KernelLogStatus;
use gpu_mcp_model::xid::{KernelLogParse, KernelLogParser};

/// What a kernel-log read produced.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelLogRead {
    /// How the read went.
    pub status: KernelLogStatus,
    /// A sentence explaining a status other than `ok`.
    pub detail: Option<String>,
    /// The path read.
    pub path: PathBuf,
    /// Events and counters.
    pub parse: KernelLogParse,
}

/// Reads and parses a kernel log.
#[derive(Debug, Clone)]
pub struct KmsgReader {
    path: PathBuf,
    timeout: Duration,
    boot_time: Option<SystemTime>,
    max_bytes: u64,
}

const MAX_RECORDS: u64 = 2_000_000;

impl KmsgReader {
    /// A reader of `path` (`/dev/kmsg`, or a file of kmsg records or `dmesg` lines).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: Duration::from_secs(5),
            boot_time: None,
            max_bytes: 32 * 1024 * 1024,
        }
    }

    /// Deadline of one read (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The boot time used to turn monotonic record times into wall-clock times; by default it is
    /// derived from `/proc/uptime`.
    pub fn with_boot_time(mut self, boot_time: SystemTime) -> Self {
        self.boot_time = Some(boot_time);
        self
    }

    /// Largest tail of a regular file that is read (default 32 MiB).
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// The path this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads on a blocking thread with the configured deadline.
    pub async fn read(&self) -> KernelLogRead {
        let me = self.clone();
        let path = self.path.clone();
        let task = tokio::task::spawn_blocking(move || me.read_blocking());
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => failed(
                path,
                KernelLogStatus::Error,
                format!("kernel-log reader failed: {e}"),
            ),
            Err(_) => failed(
                path.clone(),
                KernelLogStatus::TimedOut,
                format!(
                    "reading {} did not finish within {:?}",
                    path.display(),
                    self.timeout
                ),
            ),
        }
    }

    /// Reads synchronously (call from a blocking context).
    pub fn read_blocking(&self) -> KernelLogRead {
        let deadline = Instant::now() + self.timeout;
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => return open_error(&self.path, &e),
        };
        let boot = self.boot_time.or_else(boot_time_from_proc);
        let mut parser = KernelLogParser::new(boot).with_now(SystemTime::now());
        let mut status = KernelLogStatus::Ok;
        let mut detail = None;
        if meta.file_type().is_char_device() {
            // /dev/kmsg never reaches end of file: read non-blocking until EAGAIN. Each read
            // returns exactly one record.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path);
            let mut file = match file {
                Ok(f) => f,
                Err(e) => return open_error(&self.path, &e),
            };
            let mut buf = vec![0u8; 16 * 1024];
            let mut records = 0u64;
            loop {
                if records >= MAX_RECORDS || Instant::now() >= deadline {
                    status = KernelLogStatus::TimedOut;
                    detail = Some(format!(
                        "stopped reading {} at the deadline",
                        self.path.display()
                    ));
                    break;
                }
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        records += 1;
                        parser.feed_record(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // EPIPE: the record was overwritten while we read; the next read continues.
                    Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                    Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                        return open_error(&self.path, &e);
                    }
                    Err(e) => {
                        status = KernelLogStatus::Error;
                        detail = Some(format!("reading {} failed: {e}", self.path.display()));
                        break;
                    }
                }
            }
        } else {
            let mut file = match File::open(&self.path) {
                Ok(f) => f,
                Err(e) => return open_error(&self.path, &e),
            };
            let len = meta.len();
            let mut skip_first = false;
            if len > self.max_bytes {
                if let Err(e) = file.seek(SeekFrom::Start(len - self.max_bytes)) {
                    return failed(
                        self.path.clone(),
                        KernelLogStatus::Error,
                        format!("seek failed: {e}"),
                    );
                }
                skip_first = true;
            }
            let mut data = Vec::new();
            if let Err(e) = file.take(self.max_bytes).read_to_end(&mut data) {
                return open_error(&self.path, &e);
            }
            let start = if skip_first {
                data.iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |p| p + 1)
            } else {
                0
            };
            parser.feed_buffer(&data[start..]);
        }
        KernelLogRead {
            status,
            detail,
            path: self.path.clone(),
            parse: parser.finish(),
        }
    }
}

fn failed(path: PathBuf, status: KernelLogStatus, detail: String) -> KernelLogRead {
    KernelLogRead {
        status,
        detail: Some(detail),
        path,
        parse: KernelLogParse::default(),
    }
}

fn open_error(path: &Path, e: &std::io::Error) -> KernelLogRead {
    let p = path.display();
    let (status, detail) = match e.kind() {
        ErrorKind::PermissionDenied => (
            KernelLogStatus::PermissionDenied,
            format!(
                "no permission to read {p}: reading the kernel log needs CAP_SYSLOG (kernel.dmesg_restrict=1), and in a container the runtime's device cgroup must also allow the device, which a mount of /dev/kmsg alone does not; run the agent privileged (the chart's agent.kmsg.privileged) or grant the device to its container; Xid events then come from NVML alone"
            ),
        ),
        ErrorKind::NotFound => (
            KernelLogStatus::NotFound,
            format!("{p} does not exist: mount the host's /dev/kmsg into the agent's container"),
        ),
        _ => (KernelLogStatus::Error, format!("cannot read {p}: {e}")),
    };
    failed(path.to_path_buf(), status, detail)
}

/// Boot time from `/proc/uptime` (now minus seconds since boot).
fn boot_time_from_proc() -> Option<SystemTime> {
    let s = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = s.split_whitespace().next()?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    SystemTime::now().checked_sub(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_name_cap_syslog() {
        let r = open_error(
            Path::new("/dev/kmsg"),
            &std::io::Error::from(ErrorKind::PermissionDenied),
        );
        assert_eq!(r.status, KernelLogStatus::PermissionDenied);
        let d = r.detail.unwrap();
        assert!(
            d.contains("no permission") && d.contains("CAP_SYSLOG") && d.contains("device cgroup"),
            "{d}"
        );
    }
}
