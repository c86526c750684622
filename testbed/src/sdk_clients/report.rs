//! A client's JSON report read into an [`Outcome`], and the table of outcomes.

use std::process::ExitStatus;

use serde_json::Value;

use super::{Client, Outcome, install};

/// Counts a client's checks into `outcome`; a failed check or a failing exit is a failure.
pub(super) fn read_report(report: &Value, status: ExitStatus, outcome: &mut Outcome) {
    outcome.protocol = report["protocol_version"].as_str().map(str::to_owned);
    let checks = report["checks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for check in checks {
        let name = check["check"].as_str().unwrap_or("(unnamed check)");
        match check["ok"].as_bool() {
            Some(true) => outcome.passed += 1,
            Some(false) => outcome.failures.push(format!(
                "{name}: {}",
                check["error"].as_str().unwrap_or("(no message)")
            )),
            None => outcome.skipped += 1,
        }
    }
    let reported_ok = report["ok"].as_bool() == Some(true);
    if reported_ok != status.success() || (status.success() && !outcome.failures.is_empty()) {
        outcome.failures.push(format!(
            "client: exit {status} disagrees with its report (ok: {})",
            report["ok"]
        ));
    } else if !status.success() && outcome.failures.is_empty() {
        outcome
            .failures
            .push(format!("client: exit {status} with no failed check"));
    }
}

/// The table of outcomes, one row per target, one column per client.
pub(super) fn print_summary(
    installed: &[(Client, install::Installed)],
    targets: &[&str],
    outcomes: &[Outcome],
) {
    let sdks: Vec<String> = installed
        .iter()
        .map(|(c, i)| format!("{} ({})", c.name(), i.sdk))
        .collect();
    eprintln!("\nSDK clients in their default modes: {}", sdks.join(", "));
    let mut header = format!("  {:<20}", "server");
    for (client, _) in installed {
        header.push_str(&format!(" {:<34}", client.name()));
    }
    eprintln!("{}", header.trim_end());
    for &target in targets {
        let mut row = format!("  {target:<20}");
        for (client, _) in installed {
            let cell = outcomes
                .iter()
                .find(|o| o.client == *client && o.target == target)
                .map_or_else(String::new, |o| {
                    let verdict = if o.failures.is_empty() {
                        "passed"
                    } else {
                        "FAILED"
                    };
                    format!(
                        "{verdict}: {} ok, {} failed, {} skipped",
                        o.passed,
                        o.failures.len(),
                        o.skipped
                    )
                });
            row.push_str(&format!(" {cell:<34}"));
        }
        eprintln!("{}", row.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;

    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            client: Client::Python,
            target: "agent-stdio",
            protocol: None,
            passed: 0,
            skipped: 0,
            failures: Vec::new(),
            report: PathBuf::new(),
            log: PathBuf::new(),
        }
    }

    #[test]
    fn a_report_is_counted_and_its_failures_named() {
        let report = serde_json::json!({
            "ok": false,
            "protocol_version": "2026-07-28",
            "checks": [
                {"check": "connect", "ok": true},
                {"check": "tools/list", "ok": false, "error": "ttlMs: Field required"},
                {"check": "prompts/list", "skipped": "capability not advertised"},
            ],
        });
        let mut o = outcome();
        read_report(&report, ExitStatus::from_raw(1 << 8), &mut o);
        assert_eq!((o.passed, o.skipped), (1, 1));
        assert_eq!(o.protocol.as_deref(), Some("2026-07-28"));
        assert_eq!(o.failures, ["tools/list: ttlMs: Field required"]);
    }

    #[test]
    fn an_exit_status_that_contradicts_the_report_fails() {
        let report = serde_json::json!({"ok": true, "checks": [{"check": "connect", "ok": true}]});
        let mut o = outcome();
        read_report(&report, ExitStatus::from_raw(1 << 8), &mut o);
        assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
        let mut o = outcome();
        read_report(&report, ExitStatus::from_raw(0), &mut o);
        assert!(o.failures.is_empty(), "{:?}", o.failures);
    }
}
