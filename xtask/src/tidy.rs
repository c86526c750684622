//! Tidy tests: the workspace's conventions, checked on every `cargo test --workspace` (and so on
//! every `cargo xtask test`).
//!
//! - every member crate has a `//!` crate doc on each of its crate roots and `[lints] workspace =
//!   true`;
//! - every dependency of a member is declared in the root `Cargo.toml` and used with
//!   `workspace = true`;
//! - no Rust file outside `tests/`, `benches/` and `examples/` is longer than [`MAX_LINES`],
//!   except the files in [`LONG_FILES`], each held to the length it has now;
//! - nothing mutates the process environment (`set_var` or `remove_var` of `std::env`).

use std::fs;
use std::path::{Path, PathBuf};

use gpu_mcp_testbed::util::workspace::workspace_root;

/// Most lines a file that is not a test file may have.
const MAX_LINES: usize = 600;

/// Files longer than [`MAX_LINES`] waiting to be split, each with a ceiling (its length when it
/// was listed): the check fails when one grows, and an entry can go once its file is split.
const LONG_FILES: &[(&str, usize)] = &[];

/// Directories (relative to the workspace root) of the workspace's members, from the root
/// manifest's `members` list.
fn members() -> Vec<PathBuf> {
    let manifest = read(&workspace_root().join("Cargo.toml"));
    let start = manifest
        .find("members = [")
        .expect("the root Cargo.toml lists its members");
    let list = &manifest[start..];
    let list = &list[..list.find(']').expect("the members list ends")];
    let members: Vec<PathBuf> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(PathBuf::from)
        .collect();
    assert!(members.len() > 5, "too few members found: {members:?}");
    members
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file of every member, relative to the workspace root.
fn workspace_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for member in members() {
        rust_files(&root.join(member), &mut files);
    }
    files
        .into_iter()
        .map(|f| f.strip_prefix(&root).map(Path::to_path_buf).unwrap_or(f))
        .collect()
}

/// Whether `path` is test, bench or example code by its place (`tests/`, `benches/`,
/// `examples/`).
fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "benches" | "examples")
        )
    })
}

#[test]
fn every_member_has_a_crate_doc_and_the_workspace_lints() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for member in members() {
        let dir = root.join(&member);
        let manifest = read(&dir.join("Cargo.toml"));
        if !manifest.contains("\n[lints]\nworkspace = true") {
            problems.push(format!(
                "{}: no `[lints] workspace = true`",
                member.display()
            ));
        }
        let roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|r| dir.join(r))
            .filter(|p| p.is_file())
            .collect();
        if roots.is_empty() {
            problems.push(format!(
                "{}: no src/lib.rs or src/main.rs",
                member.display()
            ));
        }
        for path in roots {
            if !read(&path).starts_with("//! ") {
                problems.push(format!(
                    "{}: does not start with a `//!` crate doc",
                    path.strip_prefix(&root).unwrap_or(&path).display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The dependency entries of a manifest that do not come from the workspace, as
/// `[section] line`.
fn non_workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut section = String::new();
    // A `[dependencies.<name>]` table: its name, and whether it said `workspace = true`.
    let mut table: Option<(String, bool)> = None;
    let is_dependency_section = |s: &str| {
        ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .any(|d| s == *d || s.ends_with(&format!(".{d}")))
    };
    let close = |table: &mut Option<(String, bool)>, out: &mut Vec<String>| {
        if let Some((name, false)) = table.take() {
            out.push(format!("[{name}] has no `workspace = true`"));
        }
    };
    for line in manifest.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            close(&mut table, &mut out);
            section = header.trim_end_matches(']').trim().to_owned();
            if let Some((parent, _)) = section.rsplit_once('.')
                && is_dependency_section(parent)
            {
                table = Some((section.clone(), false));
            }
            continue;
        }
        if let Some((_, seen)) = &mut table {
            *seen |= line.replace(' ', "") == "workspace=true";
            continue;
        }
        if !is_dependency_section(&section) {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let from_workspace = (key.trim().ends_with(".workspace") && value.trim() == "true")
            || value.replace(' ', "").contains("workspace=true");
        if !from_workspace {
            out.push(format!("[{section}] {line}"));
        }
    }
    close(&mut table, &mut out);
    out
}

#[test]
fn every_dependency_comes_from_the_workspace() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for member in members() {
        let manifest = read(&root.join(&member).join("Cargo.toml"));
        for entry in non_workspace_dependencies(&manifest) {
            problems.push(format!("{}/Cargo.toml: {entry}", member.display()));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_dependency_check_sees_every_form() {
    let manifest = "[package]\nname = \"x\"\nversion = \"1\"\n\n\
        [dependencies]\na.workspace = true\nb = { workspace = true, features = [\"f\"] }\n\
        c = \"1\"\n\n[dev-dependencies]\nd = { version = \"1\" }\n\n\
        [target.'cfg(unix)'.dependencies]\ne = \"2\"\n\n\
        [dependencies.f]\nworkspace = true\n\n[build-dependencies.g]\nversion = \"1\"\n\n\
        [lints]\nworkspace = true\n";
    assert_eq!(
        non_workspace_dependencies(manifest),
        [
            "[dependencies] c = \"1\"",
            "[dev-dependencies] d = { version = \"1\" }",
            "[target.'cfg(unix)'.dependencies] e = \"2\"",
            "[build-dependencies.g] has no `workspace = true`",
        ]
    );
}

#[test]
fn no_file_outside_tests_is_too_long() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut listed_and_found = Vec::new();
    for file in workspace_rust_files() {
        if is_test_file(&file) {
            continue;
        }
        let lines = read(&root.join(&file)).lines().count();
        let name = file.to_string_lossy().replace('\\', "/");
        match LONG_FILES.iter().find(|(path, _)| *path == name) {
            Some((_, ceiling)) => {
                listed_and_found.push(name.clone());
                if lines > *ceiling {
                    problems.push(format!(
                        "{name}: {lines} lines, more than its ceiling of {ceiling}; split it instead"
                    ));
                }
            }
            None if lines > MAX_LINES => problems.push(format!(
                "{name}: {lines} lines, more than {MAX_LINES}; split it into modules with one job each"
            )),
            None => {}
        }
    }
    for (path, _) in LONG_FILES {
        if !listed_and_found.iter().any(|f| f == path) {
            problems.push(format!(
                "{path} is in LONG_FILES but no longer exists; remove its entry"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn nothing_mutates_the_process_environment() {
    // Spelled in two halves, so this file does not match itself.
    let needles = [concat!("env::set", "_var"), concat!("env::remove", "_var")];
    let root = workspace_root();
    let mut problems = Vec::new();
    for file in workspace_rust_files() {
        let text = read(&root.join(&file));
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                problems.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the process environment is shared by every thread; pass values explicitly:\n{problems:#?}"
    );
}
