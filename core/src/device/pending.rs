//! What a wiped phone keeps for the office: its statements (a signed wipe receipt, a duress
//! notice) sealed to the office's key, and nothing else. The file holds no address, no
//! certificate fingerprint and no reason anyone holding the phone could read: only age
//! ciphertext that the office alone opens. Where to send it comes from outside the folder: the
//! device still in memory right after its wipe ([`super::Device::send_pending_receipt`]), or
//! the office the phone next enrolls with, or an address the app is given
//! ([`super::send_pending_receipt`]).

use std::io::Write;
use std::path::Path;

use crate::crypto::office::MAX_SEALED;
use crate::error::{CoreError, Result};
use crate::protocol::Fingerprint;
use crate::transport::{Client, TransportOptions};

/// File name of the statements waiting for the office in a wiped phone's folder.
pub const PENDING_FILE: &str = "fieldcase.held";
/// Most statements kept waiting.
const MAX_STATEMENTS: usize = 4;

fn corrupt() -> CoreError {
    CoreError::Corrupt {
        what: "pending statement",
    }
}

/// The statements waiting in `dir` (none when there is no file).
pub(crate) fn read(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let path = dir.join(PENDING_FILE);
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > (MAX_STATEMENTS * (MAX_SEALED + 2)) as u64 => return Err(corrupt()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    let bytes = std::fs::read(&path)?;
    let mut rest = bytes.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if len == 0 || len > MAX_SEALED || len > tail.len() || out.len() == MAX_STATEMENTS {
            return Err(corrupt());
        }
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    Ok(out)
}

/// Keeps `statements` (each sealed to the office) waiting in `dir`, after those already there
/// (at most [`MAX_STATEMENTS`], the oldest kept), written atomically; removes the file when
/// none is left.
pub(crate) fn write(dir: &Path, statements: &[Vec<u8>]) -> Result<()> {
    let path = dir.join(PENDING_FILE);
    if statements.is_empty() {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        return crate::store::sync_dir(&path);
    }
    let mut bytes = Vec::new();
    for s in statements.iter().take(MAX_STATEMENTS) {
        let len = u16::try_from(s.len())
            .ok()
            .filter(|_| s.len() <= MAX_SEALED)
            .ok_or_else(corrupt)?;
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(s);
    }
    let tmp = path.with_extension("held.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    crate::store::sync_dir(&path)
}

/// Adds `statements` to those waiting in `dir`.
pub(crate) fn keep(dir: &Path, statements: Vec<Vec<u8>>) -> Result<()> {
    // A file that no longer reads is replaced: it could not have been sent anyway.
    let mut all = read(dir).unwrap_or_default();
    all.extend(statements);
    all.truncate(MAX_STATEMENTS);
    write(dir, &all)
}

/// Sends the statements waiting in `dir` to the office at `url` whose certificate is one of
/// `pins`, each as it is (the office opens it), and keeps only those it did not take. Returns
/// how many it took; the first refusal or network failure is returned once nothing more can
/// be sent.
pub(crate) fn send(dir: &Path, url: &str, pins: &[Fingerprint]) -> Result<usize> {
    let statements = read(dir)?;
    if statements.is_empty() {
        return Ok(0);
    }
    let client = Client::with_pins(url, pins, TransportOptions::default())?;
    let mut left = Vec::new();
    let mut sent = 0;
    let mut failure = None;
    for statement in statements {
        let request = crate::transport::RawRequest {
            method: "POST".into(),
            path: crate::protocol::PATH_WIPE_RECEIPT.into(),
            headers: vec![("content-type".into(), "application/octet-stream".to_owned())],
            body: statement.clone(),
        };
        if failure.is_some() {
            left.push(statement);
            continue;
        }
        match client.send(&request).and_then(|r| r.into_result()) {
            Ok(_) => sent += 1,
            Err(e) => {
                failure = Some(e);
                left.push(statement);
            }
        }
    }
    write(dir, &left)?;
    match failure {
        Some(e) if sent == 0 => Err(e.into()),
        _ => Ok(sent),
    }
}
