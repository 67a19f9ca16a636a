//! The one error type of `fieldcase-core`, with variants a caller can act on.
//!
//! No variant carries note text, client data or key material: messages name what went wrong and
//! which kind of record was involved, never its contents.

use crate::model::ValidationError;

/// Everything that can go wrong inside `fieldcase-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The caller's input broke a rule of the domain model; nothing was changed.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// The store is locked: unlock it with the keystore key or the passphrase first.
    #[error("the store is locked")]
    Locked,
    /// The key or passphrase does not open this store.
    #[error("wrong key or passphrase")]
    WrongKey,
    /// This handle on the store was closed ([`crate::store::Store::close`]): open the store
    /// again.
    #[error("the store was closed")]
    Closed,
    /// No store exists in the given folder (never created, or wiped).
    #[error("no store exists at this location")]
    NoStore,
    /// A store already exists where a new one was to be created.
    #[error("a store already exists at this location")]
    AlreadyExists,
    /// The requested case is not on this device.
    #[error("case not found")]
    CaseNotFound,
    /// The requested visit note is not in the case.
    #[error("visit note not found")]
    NoteNotFound,
    /// The requested accompaniment task is not in the case.
    #[error("accompaniment task not found")]
    TaskNotFound,
    /// The requested goal is not in the case's recovery plan.
    #[error("goal not found")]
    GoalNotFound,
    /// The requested checklist item is not in the task.
    #[error("checklist item not found")]
    ChecklistItemNotFound,
    /// The requested attachment is not in the case (or was removed).
    #[error("attachment not found")]
    AttachmentNotFound,
    /// Only the worker who added a record may remove it.
    #[error("only its author may remove this")]
    NotYours,
    /// The attachment's bytes are not on this phone yet: download it first.
    #[error("the attachment has not been downloaded yet")]
    NotDownloaded,
    /// The phone's volume has less free space than the floor kept for notes and sync: new
    /// attachments are refused while notes still work.
    #[error("not enough free space for attachments ({available} bytes left, floor {floor})")]
    StorageFull {
        /// Bytes left on the volume.
        available: u64,
        /// The floor below which attachments are refused.
        floor: u64,
    },
    /// Stored or received bytes failed authentication or could not be decoded. The `what` names
    /// the kind of record, never its contents.
    #[error("corrupt or tampered data: {what}")]
    Corrupt {
        /// Which kind of record was bad.
        what: &'static str,
    },
    /// An automerge document could not be loaded or changed (including inputs that make
    /// automerge panic, which are caught and reported here).
    #[error("document error: {0}")]
    Document(&'static str),
    /// The database was written by a newer version of fieldcase.
    #[error("store schema version {found} is newer than this app supports ({supported})")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The platform key provider could not supply or destroy the key.
    #[error("key provider failed: {0}")]
    KeyProvider(String),
    /// The platform keystore hands out its key only after the user authenticated (device
    /// credential or biometrics): the app asks her to, then unlocks again. Nothing was tried.
    #[error("the keystore needs the user to authenticate first")]
    AuthenticationRequired,
    /// A new passphrase is too short or too easy to guess; nothing was changed. `detail` says
    /// why (length, or what makes it guessable), never the passphrase.
    #[error("weak passphrase: {detail}")]
    WeakPassphrase {
        /// Why it was refused.
        detail: String,
    },
    /// A passphrase slot of the key file was made with an scrypt work factor below the floor
    /// (an old or tampered key file, or one made with a lowered setting): it is not opened,
    /// since its passphrase would be cheap to guess from a copy.
    #[error(
        "a passphrase slot's key derivation is too cheap (work factor {found}, at least {floor})"
    )]
    KeySlotTooWeak {
        /// The work factor (log2 N) found.
        found: u8,
        /// The lowest accepted ([`crate::crypto::MIN_SCRYPT_WORK_FACTOR`]).
        floor: u8,
    },
    /// The unlock lacked what this store opens with (see
    /// [`crate::store::Store::unlock_needs`]): the keystore key, the passphrase, or both
    /// together. Nothing was tried.
    #[error("this store opens with {}", match (keystore, passphrase) {
        (true, true) => "the keystore key and the passphrase together",
        (true, false) => "the keystore key",
        _ => "the passphrase",
    })]
    UnlockNeeds {
        /// The keystore key is needed.
        keystore: bool,
        /// The passphrase is needed.
        passphrase: bool,
    },
    /// A duress PIN needs a store with a passphrase (one enrolled with the keystore key alone
    /// has no passphrase to stand beside).
    #[error("a duress PIN needs a store that opens with a passphrase")]
    DuressNeedsPassphrase,
    /// This store already opens with a passphrase: adding one would change nothing (a new
    /// passphrase is not offered here).
    #[error("this store already has a passphrase")]
    PassphraseAlreadySet,
    /// Too many wrong passphrases in a row: no attempt is made until `retry_after_secs` seconds
    /// have passed. Nothing was tried.
    #[error("too many wrong passphrases: try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds to wait before the next attempt is made.
        retry_after_secs: u64,
    },
    /// An encryption primitive failed (for example the random number generator).
    #[error("encryption failed")]
    Crypto,
    /// A sync message was refused (too large, unknown version, malformed).
    #[error("sync protocol: {0}")]
    Sync(#[from] crate::sync::SyncError),
    /// The network or the server failed or refused; nothing was lost. `PinMismatch` means the
    /// server is not the enrolled office; an `Http` refusal carries the server's reason.
    #[error("network: {0}")]
    Network(crate::transport::TransportError),
    /// This enrolled phone has not synced within its offline lease: case data stays closed
    /// until a sync succeeds (which renews the lease, or wipes a revoked phone).
    #[error("the offline lease has run out: sync with the office to open case data")]
    LeaseExpired,
    /// A scanned or pasted enrollment invite was refused (its [`crate::protocol::InviteError`]
    /// says why: another QR code, a newer version, a misread, a bad address); nothing was sent.
    #[error("enrollment invite: {0}")]
    Invite(#[from] crate::protocol::InviteError),
    /// The office revoked this phone; core verified the server's signed wipe order and wiped
    /// the store. The app should show the revoked screen and forget its keystore key.
    #[error("this device was revoked by the office and has been wiped")]
    RevokedAndWiped,
    /// A wipe order that is not signed by the enrolled office (or names another device) was
    /// refused; nothing was wiped.
    #[error("a wipe order failed verification and was ignored")]
    ForgedWipeOrder,
    /// SQLite failed (disk full, read-only folder, I/O error).
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
