//! Running programs that must succeed: on failure the error names the command line, the exit
//! status and (when captured) the program's stderr.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// `cargo` as the running cargo names itself (`$CARGO`), else `cargo` from `PATH`, without the
/// variables `cargo run` gave this process (`CARGO_PKG_*`, `CARGO_MANIFEST_*`, ...): build scripts
/// such as ring's rerun when those change, so a nested build that inherited xtask's would
/// rebuild what a plain `cargo build` had built, and the other way round.
pub fn cargo() -> Command {
    let mut cargo =
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            cargo.env_remove(name);
        }
    }
    cargo
}

/// Whether `cargo run` sets this variable for the program it runs (a package's metadata).
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

/// Runs `cmd` with the caller's stdio; fails unless it exits successfully.
pub fn status(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` with its output captured; fails with its stderr unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `cmd` and returns its stdout; fails with its stderr unless it exits successfully.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Stdout followed by stderr of a finished command, as text (for reports of tools that write
/// their findings to either).
pub fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Whether `err` says the program itself was not found (so the caller can say how to get it).
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    })
}

/// The command line of `cmd` as one string, the program by its file name.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut line = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_is_reported_with_its_stderr() {
        let err = output(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sh -c echo oops >&2; exit 3"), "{err}");
        assert!(err.contains("oops"), "{err}");
        assert_eq!(
            output(Command::new("sh").args(["-c", "echo fine"])).unwrap(),
            "fine\n"
        );
    }

    #[test]
    fn nested_cargo_leaves_out_the_package_of_cargo_run() {
        for name in ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR", "CARGO_CRATE_NAME"] {
            assert!(set_by_cargo_run(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
        ] {
            assert!(!set_by_cargo_run(name), "{name}");
        }
    }

    #[test]
    fn a_missing_program_is_recognised() {
        let err = status(&mut Command::new("/nonexistent/gpu-mcp-no-such-program")).unwrap_err();
        assert!(is_not_found(&err), "{err:#}");
        let err = status(Command::new("sh").args(["-c", "exit 1"])).unwrap_err();
        assert!(!is_not_found(&err), "{err:#}");
    }
}
