//! Reading the files flags name: the one place tokens, certificates and keys are read.

use std::path::Path;

use crate::error::{Error, Result};

/// Reads the file at `path`, named `what` in errors (`TLS certificate`).
pub fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads a token from the file at `path`: UTF-8, surrounding whitespace (a trailing newline)
/// removed, and not empty.
pub fn read_secret(what: &'static str, path: &Path) -> Result<String> {
    let bytes = read_file(what, path)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        what,
        path: path.to_owned(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::EmptySecret {
            what: format!("{what} {}", path.display()),
        });
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{EX_USAGE, ExitStatus};

    #[test]
    fn secrets_are_trimmed_and_must_exist_and_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-cli-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("token");
        std::fs::write(&good, "s3cret\n").unwrap();
        assert_eq!(read_secret("auth token file", &good).unwrap(), "s3cret");
        let empty = dir.join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let err = read_secret("auth token file", &empty).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let binary = dir.join("binary");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_secret("auth token file", &binary),
            Err(Error::NotUtf8 { .. })
        ));
        let err = read_secret("auth token file", Path::new("/nonexistent/token")).unwrap_err();
        assert_eq!(err.exit_code(), EX_USAGE);
        assert!(err.to_string().contains("/nonexistent/token"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
