//! The office's data folder: created owner-only on first start, its private files created
//! owner-only, and the check that an admin command points at a folder that holds an office.

use std::path::Path;

use crate::error::ServerError;

/// The office's secret key file inside the data folder (its contents: [`crate::storage::keys`]).
pub const KEY_FILE: &str = "server.key";

/// Creates the data folder (mode 0700 on Unix) if it does not exist.
pub fn prepare(data_dir: &Path) -> Result<(), ServerError> {
    if data_dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(data_dir)
        .map_err(ServerError::io("creating the data folder"))
}

/// Checks that `data_dir` holds an office that `serve` created: its key file and, on the
/// embedded default, its SQLite database `sqlite_file` (`None` for PostgreSQL).
/// [`ServerError::NoOffice`] otherwise, so that an admin command run from the wrong folder (or
/// with a mistyped `--data`) says so instead of creating a second, empty office beside the
/// real one.
pub fn require_office(data_dir: &Path, sqlite_file: Option<&Path>) -> Result<(), ServerError> {
    let holds_db = sqlite_file.is_none_or(Path::is_file);
    if data_dir.join(KEY_FILE).is_file() && holds_db {
        Ok(())
    } else {
        Err(ServerError::NoOffice(data_dir.to_path_buf()))
    }
}

/// Creates a new file readable only by its owner; fails if it exists.
pub fn create_private(path: &Path) -> Result<std::fs::File, ServerError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(ServerError::io(format!("creating {}", file_name(path))))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
