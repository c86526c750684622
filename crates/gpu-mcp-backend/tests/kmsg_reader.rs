#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The kernel-log reader on files, missing paths and `/dev/kmsg`.

use std::time::{Duration, SystemTime};

use gpu_mcp_backend::KmsgReader;
use gpu_mcp_model::KernelLogStatus;

#[tokio::test]
async fn reader_reads_a_kmsg_file_with_the_given_boot_time() {
    let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let path = format!(
        "{}/../gpu-mcp-model/tests/fixtures/kmsg-xid79.log",
        env!("CARGO_MANIFEST_DIR")
    );
    let read = KmsgReader::new(&path).with_boot_time(boot).read().await;
    assert_eq!(read.status, KernelLogStatus::Ok);
    assert_eq!(read.parse.events.len(), 2);
    assert_eq!(read.parse.lines, 12);
}

#[tokio::test]
async fn reader_reports_a_missing_path_clearly() {
    let read = KmsgReader::new("/nonexistent/kmsg").read().await;
    assert_eq!(read.status, KernelLogStatus::NotFound);
    assert!(read.detail.unwrap().contains("/dev/kmsg"));
}

#[tokio::test]
async fn reader_keeps_only_the_tail_of_a_large_file() {
    let dir = std::env::temp_dir().join(format!("gpu-mcp-kmsg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.log");
    let mut s = String::new();
    for i in 0..2000 {
        s.push_str(&format!(
            "6,{i},{i},-;NVRM: Xid (PCI:0000:3b:00): 13, pid={i}, name=a, x\n"
        ));
    }
    std::fs::write(&path, &s).unwrap();
    let read = KmsgReader::new(&path).with_max_bytes(4096).read().await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(read.status, KernelLogStatus::Ok);
    let n = read.parse.events.len();
    assert!(n > 10 && n < 100, "{n}");
    assert_eq!(read.parse.events.last().unwrap().pid, Some(1999));
    assert_eq!(
        read.parse.unparsed_xid_lines, 0,
        "the cut first line must be skipped"
    );
}

#[tokio::test]
async fn reader_reads_dev_kmsg_until_eagain_or_reports_permission() {
    if !std::path::Path::new("/dev/kmsg").exists() {
        return;
    }
    // /dev/kmsg never reaches end of file: the read must stop by itself.
    let read = KmsgReader::new("/dev/kmsg")
        .with_timeout(Duration::from_secs(20))
        .read()
        .await;
    match read.status {
        KernelLogStatus::Ok => assert!(read.parse.lines > 0),
        KernelLogStatus::PermissionDenied => {
            assert!(read.detail.unwrap().contains("CAP_SYSLOG"));
        }
        other => panic!("unexpected {other:?}: {:?}", read.detail),
    }
}
