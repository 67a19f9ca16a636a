//! The key file beside the database: the store's id and its key slots (the data key wrapped with
//! age). It is kept out of the database so that wiping it shreds every copy of the database,
//! backups included: a copy of the database without this file opens with nothing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::KeySlot;
use crate::error::{CoreError, Result};

/// Largest key file accepted (a handful of slots of a few hundred bytes each).
const MAX_KEY_FILE: u64 = 64 * 1024;
const FORMAT: u32 = 1;

/// The contents of the key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    pub format: u32,
    /// Random id binding this key file to its database.
    pub store_id: uuid::Uuid,
    pub slots: Vec<KeySlot>,
    /// Wrong passphrases in a row, sealed (`super::attempts`), base64; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<String>,
    /// A statement for the office, sealed to its key (base64): what every sync sends along, and
    /// what a wipe made while locked leaves as its receipt (see `super::duress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl KeyFile {
    pub(crate) fn new(store_id: uuid::Uuid, slots: Vec<KeySlot>) -> Self {
        Self {
            format: FORMAT,
            store_id,
            slots,
            attempts: None,
            held: None,
        }
    }

    /// The sealed count of wrong passphrases, if one is kept (and decodes).
    pub(crate) fn attempts(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        self.attempts
            .as_deref()
            .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
    }

    /// Keeps `sealed` as the count of wrong passphrases (`None`: none).
    pub(crate) fn set_attempts(&mut self, sealed: Option<&[u8]>) {
        use base64::Engine;
        self.attempts = sealed.map(|s| base64::engine::general_purpose::STANDARD.encode(s));
    }

    pub(crate) fn read(path: &Path) -> Result<Self> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CoreError::NoStore),
            Err(e) => return Err(e.into()),
        };
        if meta.len() > MAX_KEY_FILE {
            return Err(CoreError::Corrupt { what: "key file" });
        }
        let bytes = fs::read(path)?;
        let file: KeyFile =
            serde_json::from_slice(&bytes).map_err(|_| CoreError::Corrupt { what: "key file" })?;
        if file.format != FORMAT || file.slots.is_empty() || file.slots.len() > 8 {
            return Err(CoreError::Corrupt { what: "key file" });
        }
        Ok(file)
    }

    /// Writes the file atomically: a temporary file, fsync, rename, fsync of the folder.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let bytes =
            serde_json::to_vec(self).map_err(|_| CoreError::Corrupt { what: "key file" })?;
        let tmp = path.with_extension("keys.tmp");
        {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(())
    }
}

/// Overwrites a file with random bytes, syncs it, and deletes it. Returns whether it existed.
pub(crate) fn shred(path: &Path) -> Result<bool> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    {
        let mut file = OpenOptions::new().write(true).open(path)?;
        let mut noise = vec![0u8; len as usize];
        rand::rngs::OsRng.fill_bytes(&mut noise);
        file.write_all(&noise)?;
        file.sync_all()?;
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// Makes a rename or delete in `path`'s folder durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
