//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `testbed/sdk-clients/conformance/`) against the HTTP agent and the HTTP gateway.
//!
//! Every server scenario that applies to a GPU server runs, each at the revision whose wire it
//! speaks: the handshake scenarios at 2025-11-25 and the stateless ones at 2026-07-28.
//! Scenarios that only exercise the suite's own fixture tools, prompts and resources
//! (`test_simple_text`, `test://static-text`, the tasks and skills extensions, ...) do not
//! apply: a GPU server has none of them.
//! Each scenario runs as its own `conformance server` process with
//! `testbed/sdk-clients/conformance/expected-failures.yaml` as its baseline, so the suite
//! itself fails a run on any failed or warned check that the baseline does not list, and on
//! a listed one that passes now.
//! Its results (`checks.json`) and output stay under
//! `target/xtask/sdk-clients/conformance/<target>/<scenario>@<revision>/`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use super::install::{Installed, sources};
use crate::util::fs as files;
use crate::util::process::KillOnDrop;

/// The last revision with the `initialize` handshake.
const HANDSHAKE: &str = "2025-11-25";
/// The stateless revision.
const STATELESS: &str = "2026-07-28";

/// The server scenarios that apply, each with the revision it runs at.
pub(super) const SCENARIOS: &[(&str, &str)] = &[
    ("server-initialize", HANDSHAKE),
    ("server-session-lifecycle", HANDSHAKE),
    ("ping", HANDSHAKE),
    ("logging-set-level", HANDSHAKE),
    ("tools-list", HANDSHAKE),
    ("resources-list", HANDSHAKE),
    ("prompts-list", HANDSHAKE),
    ("dns-rebinding-protection", HANDSHAKE),
    ("server-stateless", STATELESS),
    ("tools-list", STATELESS),
    ("resources-list", STATELESS),
    ("prompts-list", STATELESS),
    ("sep-2164-resource-not-found", STATELESS),
    ("dns-rebinding-protection", STATELESS),
    ("caching", STATELESS),
    ("http-header-validation", STATELESS),
    ("server-sse-multiple-streams", STATELESS),
];

/// Hang guard of one scenario run (the suite's own per-scenario timeout is 30 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// The outcome of one scenario against one target.
#[derive(Debug)]
pub(super) struct ScenarioOutcome {
    pub(super) target: &'static str,
    pub(super) scenario: &'static str,
    pub(super) revision: &'static str,
    /// Checks that passed (`SUCCESS`).
    pub(super) passed: usize,
    /// Checks that failed or warned, listed in the baseline or not.
    pub(super) failed: usize,
    /// Checks skipped or only informative.
    pub(super) other: usize,
    /// Why the run failed: the suite's verdict against the baseline, or a run that did not
    /// finish; `None` when it passed.
    pub(super) failure: Option<String>,
}

/// The baseline of expected failures, each with its reason.
fn expected_failures() -> PathBuf {
    sources().join("conformance").join("expected-failures.yaml")
}

/// Runs every scenario against every `(name, url)` target, one at a time.
pub(super) fn run(
    suite: &Installed,
    targets: &[(&'static str, String)],
    out_dir: &Path,
) -> Result<Vec<ScenarioOutcome>> {
    let baseline = expected_failures();
    let mut outcomes = Vec::new();
    for (target, url) in targets {
        for &(scenario, revision) in SCENARIOS {
            let dir = out_dir
                .join("conformance")
                .join(target)
                .join(format!("{scenario}@{revision}"));
            files::create_dir(&dir)?;
            let mut outcome = run_one(suite, url, scenario, revision, &baseline, &dir)?;
            outcome.target = target;
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// One `conformance server` run, its output in `<dir>/output.log`.
fn run_one(
    suite: &Installed,
    url: &str,
    scenario: &'static str,
    revision: &'static str,
    baseline: &Path,
    dir: &Path,
) -> Result<ScenarioOutcome> {
    let log = dir.join("output.log");
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("cloning the log handle")?;
    let mut cmd = Command::new(&suite.program);
    cmd.arg(&suite.script)
        .args(["server", "--url", url, "--scenario", scenario])
        .args(["--spec-version", revision])
        .arg("--expected-failures")
        .arg(baseline)
        .arg("--output-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting the conformance suite: {cmd:?}"))?;
    let mut child = KillOnDrop(child);
    let started = Instant::now();
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() > SCENARIO_TIMEOUT => {
                break Err(format!(
                    "still running after {} s; killed",
                    SCENARIO_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(format!("waiting for it failed: {e}")),
        }
    };
    let checks = read_checks(dir);
    let mut outcome = ScenarioOutcome {
        target: "",
        scenario,
        revision,
        passed: 0,
        failed: 0,
        other: 0,
        failure: None,
    };
    for check in &checks {
        match check["status"].as_str() {
            Some("SUCCESS") => outcome.passed += 1,
            Some("FAILURE" | "WARNING") => outcome.failed += 1,
            _ => outcome.other += 1,
        }
    }
    let verdict = |log: &Path| files::quote_lines(&verdict_lines(log));
    outcome.failure = match status {
        Ok(s) if s.success() && !checks.is_empty() => None,
        Ok(s) if s.success() => Some(format!("no checks.json under {}", dir.display())),
        Ok(s) => Some(format!("the suite exited {s}:\n{}", verdict(&log))),
        Err(why) => Some(format!("{why}; log tail:\n{}", verdict(&log))),
    };
    Ok(outcome)
}

/// Every check of the run in `dir` (the suite writes `<dir>/server-<scenario>-<time>/checks.json`).
fn read_checks(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path().join("checks.json"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
        .flatten()
        .collect()
}

/// The suite's verdict lines of a failed run (what it names as unexpected or stale), else the
/// log's tail.
fn verdict_lines(log: &Path) -> String {
    let text = without_colours(&std::fs::read_to_string(log).unwrap_or_default());
    let named: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("✗ ")
                || l.starts_with("✓ ")
                || l.starts_with("Unexpected failures (")
                || l.starts_with("Stale baseline entries")
        })
        .collect();
    if named.is_empty() {
        files::tail(log, 15)
    } else {
        named.join("\n")
    }
}

/// `text` without its terminal colour sequences (`ESC [ … m`; the suite colours its verdicts
/// whatever `NO_COLOR` says).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints one row per target: scenarios run and passed, checks counted.
pub(super) fn print_summary(suite: &Installed, outcomes: &[ScenarioOutcome], took: Duration) {
    eprintln!("\nconformance suite ({}):", suite.sdk);
    let mut targets: Vec<&str> = outcomes.iter().map(|o| o.target).collect();
    targets.dedup();
    for target in targets {
        let mine: Vec<&ScenarioOutcome> = outcomes.iter().filter(|o| o.target == target).collect();
        let passed = mine.iter().filter(|o| o.failure.is_none()).count();
        let sum = |f: fn(&ScenarioOutcome) -> usize| mine.iter().map(|o| f(o)).sum::<usize>();
        eprintln!(
            "  {target:<15} {passed}/{} scenarios passed; checks: {} ok, {} failed or warned \
             (expected ones included), {} skipped or informative",
            mine.len(),
            sum(|o| o.passed),
            sum(|o| o.failed),
            sum(|o| o.other),
        );
    }
    eprintln!("  in {:.0} s", took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_runs_at_a_revision_it_has_and_once_per_revision() {
        for (i, (scenario, revision)) in SCENARIOS.iter().enumerate() {
            assert!([HANDSHAKE, STATELESS].contains(revision), "{scenario}");
            assert!(
                !SCENARIOS[..i].contains(&(scenario, revision)),
                "{scenario}@{revision} twice"
            );
        }
    }

    #[test]
    fn colour_sequences_are_dropped() {
        assert_eq!(
            without_colours("\u{1b}[31mStale baseline entries:\u{1b}[0m\n  ✓ a:b"),
            "Stale baseline entries:\n  ✓ a:b"
        );
    }

    #[test]
    fn the_baseline_gives_a_reason_for_every_entry() {
        let text = std::fs::read_to_string(expected_failures()).expect("the baseline");
        let mut reason = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') && line.len() > 2 {
                reason = true;
            } else if let Some(entry) = line.strip_prefix("- ") {
                assert!(reason, "{entry} has no reason above it");
                let scenario = entry.split(':').next().unwrap_or_default();
                assert!(
                    SCENARIOS.iter().any(|(s, _)| *s == scenario),
                    "{entry} names a scenario that is not run"
                );
            } else if line.is_empty() {
                reason = false;
            }
        }
    }
}
