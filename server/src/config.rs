//! The optional TOML configuration file. Command-line flags override it.
//!
//! ```toml
//! data = "/var/lib/fieldcase"         # data folder (default ./fieldcase-data)
//! listen = "0.0.0.0:8443"             # HTTPS address (default 127.0.0.1:8443)
//! public_url = "https://office.lan:8443"  # address printed for devices at enrollment
//! request_timeout_secs = 60
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ServerError;

/// Default data folder.
pub const DEFAULT_DATA_DIR: &str = "./fieldcase-data";
/// Default HTTPS address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Contents of the configuration file; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// HTTPS listen address.
    pub listen: Option<SocketAddr>,
    /// URL devices use to reach the server (printed with enrollment codes).
    pub public_url: Option<String>,
    /// Longest time one request may take, seconds.
    pub request_timeout_secs: Option<u64>,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(ServerError::io("reading the configuration file"))?;
        toml::from_str(&text).map_err(|e| ServerError::Config(e.message().to_owned()))
    }
}
