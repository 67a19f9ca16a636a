//! The one error the apps see, and the one place where core's errors are mapped to it.
//!
//! Each variant says what the app should do (unlock again, fix the field, sync later, show the
//! revoked screen), not what went wrong deep inside. No variant carries note text, client data or
//! key material: the messages come from core's errors, which are written to that rule.

use std::panic::{AssertUnwindSafe, catch_unwind};

use fieldcase_core::CoreError;
use fieldcase_core::transport::TransportError;

/// Everything a call into fieldcase can fail with, as the app acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FieldcaseError {
    /// The store is locked: show the unlock screen.
    #[error("the store is locked")]
    Locked,
    /// The keystore key or the passphrase does not open this store: ask again.
    #[error("wrong key or passphrase")]
    WrongKey,
    /// The input broke a rule (empty note, text too long, unknown id format, ...): nothing was
    /// changed; show `message` beside the field.
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// Which rule was broken (names the field, never repeats its text).
        detail: String,
    },
    /// The case, note, task or checklist item is not on this device: refresh the list.
    #[error("{what} not found")]
    NotFound {
        /// The kind of record (`case`, `note`, `task`, `checklist item`).
        what: String,
    },
    /// This device object was closed (`close`): open the device again.
    #[error("this device object was closed")]
    Closed,
    /// No store exists in the folder (never enrolled, or wiped): show enrollment.
    #[error("no store exists at this location")]
    NoStore,
    /// A store already exists in the folder: this phone is already enrolled.
    #[error("a store already exists at this location")]
    AlreadyEnrolled,
    /// The platform keystore could not supply or destroy its key.
    #[error("keystore failed: {detail}")]
    Keystore {
        /// What the keystore said.
        detail: String,
    },
    /// The keystore key is usable only right after the worker authenticated: show the
    /// platform's prompt (device PIN or biometrics), then unlock again. Nothing was tried.
    #[error("authenticate first")]
    AuthenticationRequired,
    /// The unlock lacked what this store opens with: the keystore key (`keystore`), the
    /// passphrase (`passphrase`), or both together. Nothing was tried; ask `unlock_needs`.
    #[error("this store opens with the keystore key: {keystore}, the passphrase: {passphrase}")]
    UnlockNeeds {
        /// The keystore key is needed.
        keystore: bool,
        /// The passphrase is needed.
        passphrase: bool,
    },
    /// The new passphrase is too short or too easy to guess: nothing was changed; show `detail`
    /// (why, never the passphrase) and ask for another.
    #[error("weak passphrase: {detail}")]
    WeakPassphrase {
        /// Why it was refused.
        detail: String,
    },
    /// Too many wrong passphrases in a row: show how long to wait; no attempt is made before.
    #[error("too many wrong passphrases: try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the next attempt is made.
        retry_after_secs: u64,
    },
    /// The server is not the enrolled office (its certificate does not match the pin): nothing
    /// was sent; warn the worker, do not retry on this network. If the office replaced its
    /// certificate while this phone was away, the worker asks the office for the new
    /// fingerprint and the app passes it to `repin`; `server_shows` (the fingerprint of the
    /// certificate the server presented, 64 hex digits) lets the app show whether the two
    /// agree, but is not to be trusted by itself.
    #[error("the server is not the enrolled office (it shows certificate {server_shows})")]
    PinMismatch {
        /// SHA-256 fingerprint of the certificate the server presented.
        server_shows: String,
    },
    /// The office could not be reached or did not answer in time: nothing was lost; retry later.
    #[error("network: {detail}")]
    Network {
        /// What failed (connect, timeout, TLS, ...).
        detail: String,
    },
    /// The office refused the request (enrollment code unknown or used, request rejected).
    /// `retry_later` is true when the same request may succeed later (server busy or failing).
    #[error("the office refused the request ({code}): {detail}")]
    Refused {
        /// The server's machine-readable code (`enrollment_code_used`, ...).
        code: String,
        /// The server's reason.
        detail: String,
        /// Whether retrying later may help.
        retry_later: bool,
    },
    /// The office revoked this device; core verified the signed wipe order and wiped the store.
    /// Show the revoked screen; nothing can be opened any more.
    #[error("this device was revoked and wiped")]
    RevokedAndWiped,
    /// Unlock refused: the device has not synced with the office within its offline lease.
    /// Connect and sync, or ask the office.
    #[error("the offline lease expired: sync with the office")]
    LeaseExpired,
    /// Stored data failed authentication or could not be decoded.
    #[error("corrupt data: {detail}")]
    Corrupt {
        /// Which kind of record was bad.
        detail: String,
    },
    /// The disk or database failed (disk full, read-only folder, I/O error).
    #[error("storage error: {detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// Only the worker who added a record may remove it.
    #[error("only its author may remove this")]
    NotYours,
    /// The attachment's bytes are not on this phone yet: `request_download`, then sync.
    #[error("the attachment has not been downloaded yet")]
    NotDownloaded,
    /// Too little free space for attachments (notes still work): free some space.
    #[error("not enough free space for attachments ({available_bytes} bytes left)")]
    StorageFull {
        /// Bytes left on the volume.
        available_bytes: u64,
        /// The floor below which attachments are refused.
        floor_bytes: u64,
    },
    /// The scanned or pasted text is not an enrollment invite this app can use: nothing was
    /// sent. `problem` says what to tell the worker (scan the office's code again, update the
    /// app, ...).
    #[error("not a usable enrollment invite: {detail}")]
    InvalidInvite {
        /// What is wrong with it.
        problem: InviteProblem,
        /// The same, in words.
        detail: String,
    },
    /// A bug: an unexpected failure or a panic inside the library, caught at the boundary. The
    /// process keeps running; report it.
    #[error("internal error: {detail}")]
    Internal {
        /// What failed.
        detail: String,
    },
}

/// What is wrong with a scanned enrollment invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InviteProblem {
    /// Another kind of QR code or text: scan the code on the office's enrollment page.
    NotAnInvite,
    /// A version this app does not read: update the app.
    UnsupportedVersion,
    /// A misread or altered invite (characters, length or checksum): scan it again.
    Damaged,
    /// The office address in it is not `https://host[:port]`: ask the office.
    BadAddress,
}

impl From<fieldcase_core::protocol::InviteError> for FieldcaseError {
    fn from(e: fieldcase_core::protocol::InviteError) -> Self {
        use fieldcase_core::protocol::InviteError as I;
        let problem = match e {
            I::NotAnInvite => InviteProblem::NotAnInvite,
            I::UnsupportedVersion(_) => InviteProblem::UnsupportedVersion,
            I::BadEncoding | I::Truncated | I::TooLong | I::BadChecksum => InviteProblem::Damaged,
            I::BadUrl => InviteProblem::BadAddress,
        };
        FieldcaseError::InvalidInvite {
            problem,
            detail: e.to_string(),
        }
    }
}

impl From<CoreError> for FieldcaseError {
    fn from(e: CoreError) -> Self {
        use FieldcaseError as F;
        let not_found = |what: &str| F::NotFound { what: what.into() };
        match e {
            CoreError::Invalid(v) => F::InvalidInput {
                detail: v.to_string(),
            },
            CoreError::Locked => F::Locked,
            CoreError::WrongKey => F::WrongKey,
            CoreError::NoStore => F::NoStore,
            CoreError::Closed => F::Closed,
            CoreError::AlreadyExists => F::AlreadyEnrolled,
            CoreError::CaseNotFound => not_found("case"),
            CoreError::NoteNotFound => not_found("note"),
            CoreError::TaskNotFound => not_found("task"),
            CoreError::ChecklistItemNotFound => not_found("checklist item"),
            CoreError::GoalNotFound => not_found("goal"),
            CoreError::AttachmentNotFound => not_found("attachment"),
            CoreError::NotYours => F::NotYours,
            CoreError::NotDownloaded => F::NotDownloaded,
            CoreError::StorageFull { available, floor } => F::StorageFull {
                available_bytes: available,
                floor_bytes: floor,
            },
            CoreError::KeyProvider(message) => F::Keystore { detail: message },
            CoreError::AuthenticationRequired => F::AuthenticationRequired,
            CoreError::UnlockNeeds {
                keystore,
                passphrase,
            } => F::UnlockNeeds {
                keystore,
                passphrase,
            },
            CoreError::WeakPassphrase { detail } => F::WeakPassphrase { detail },
            e @ (CoreError::DuressNeedsPassphrase | CoreError::PassphraseAlreadySet) => {
                F::InvalidInput {
                    detail: e.to_string(),
                }
            }
            CoreError::TooManyAttempts { retry_after_secs } => {
                F::TooManyAttempts { retry_after_secs }
            }
            CoreError::Network(t) => from_transport(t),
            CoreError::Invite(i) => i.into(),
            CoreError::RevokedAndWiped => F::RevokedAndWiped,
            CoreError::LeaseExpired => F::LeaseExpired,
            e @ CoreError::ForgedWipeOrder => F::Refused {
                code: "forged_wipe_order".into(),
                detail: e.to_string(),
                retry_later: false,
            },
            CoreError::Storage(e) => F::Storage {
                detail: e.to_string(),
            },
            CoreError::Io(e) => F::Storage {
                detail: e.to_string(),
            },
            e @ (CoreError::Corrupt { .. }
            | CoreError::KeySlotTooWeak { .. }
            | CoreError::Document(_)
            | CoreError::SchemaTooNew { .. }
            | CoreError::Sync(_)) => F::Corrupt {
                detail: e.to_string(),
            },
            e => F::Internal {
                detail: e.to_string(),
            },
        }
    }
}

fn from_transport(e: TransportError) -> FieldcaseError {
    match e {
        TransportError::PinMismatch { actual } => FieldcaseError::PinMismatch {
            server_shows: actual.to_hex(),
        },
        TransportError::Http {
            status,
            code,
            reason,
            ..
        } => FieldcaseError::Refused {
            // A phone waiting for an admin to confirm its key fingerprint syncs once she has.
            retry_later: status >= 500
                || status == 429
                || status == 408
                || code == fieldcase_core::protocol::error_code::DEVICE_UNCONFIRMED,
            code,
            detail: reason,
        },
        TransportError::InvalidUrl(what) => FieldcaseError::InvalidInput {
            detail: format!("invalid server address: {what}"),
        },
        other => FieldcaseError::Network {
            detail: other.to_string(),
        },
    }
}

/// The error of a foreign [`crate::KeyStore`]: the platform keystore could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeyStoreError {
    /// The key is usable only right after the user authenticated (Android
    /// `UserNotAuthenticatedException`, iOS user presence not given): reported to the app as
    /// [`FieldcaseError::AuthenticationRequired`].
    #[error("the user must authenticate first")]
    AuthenticationRequired,
    /// The key is not available (not created, destroyed, user authentication needed, ...).
    #[error("key unavailable: {detail}")]
    Unavailable {
        /// What the platform said (never the key).
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeyStoreError::Unavailable { detail: e.reason }
    }
}

/// Runs one call into core: maps its error, and turns a panic into [`FieldcaseError::Internal`]
/// so that it never unwinds into the app (automerge can panic on bad bytes; DESIGN.md section
/// 11). Every exported method goes through here.
pub(crate) fn call<T>(f: impl FnOnce() -> Result<T, CoreError>) -> Result<T, FieldcaseError> {
    call_ffi(|| f().map_err(FieldcaseError::from))
}

/// Like [`call`], for work that already speaks [`FieldcaseError`] (argument parsing).
pub(crate) fn call_ffi<T>(
    f: impl FnOnce() -> Result<T, FieldcaseError>,
) -> Result<T, FieldcaseError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(FieldcaseError::Internal {
                detail: format!("panic: {what}"),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors() {
        let r: Result<(), _> = call(|| panic!("boom"));
        assert_eq!(
            r,
            Err(FieldcaseError::Internal {
                detail: "panic: boom".into()
            })
        );
    }

    #[test]
    fn revocation_and_lease_cross_as_their_own_variants() {
        assert_eq!(
            FieldcaseError::from(CoreError::RevokedAndWiped),
            FieldcaseError::RevokedAndWiped
        );
        assert_eq!(
            FieldcaseError::from(CoreError::LeaseExpired),
            FieldcaseError::LeaseExpired
        );
        assert!(matches!(
            FieldcaseError::from(CoreError::ForgedWipeOrder),
            FieldcaseError::Refused {
                retry_later: false,
                ..
            }
        ));
    }

    #[test]
    fn refusals_say_whether_to_retry() {
        let e = FieldcaseError::from(CoreError::Network(TransportError::Http {
            status: 503,
            code: "unavailable".into(),
            reason: "busy".into(),
            wipe_order: None,
        }));
        assert!(matches!(
            e,
            FieldcaseError::Refused {
                retry_later: true,
                ..
            }
        ));
        assert_eq!(
            FieldcaseError::from(CoreError::Network(TransportError::Timeout)),
            FieldcaseError::Network {
                detail: "the server did not answer in time".into()
            }
        );
    }
}
