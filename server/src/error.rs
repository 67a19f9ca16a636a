//! The crate's errors: [`ServerError`] for everything the office does outside the shape of an
//! HTTP answer (start-up, storage, keys, TLS, administration), and [`SqlError`] for the SQL
//! facade over both backends. The HTTP layer turns them into answers
//! ([`crate::http::error::AppError`]).

/// Failures of the server outside a request: start-up, storage, keys, TLS, administration.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// File-system or socket failure.
    #[error("i/o error on {what}: {source}")]
    Io {
        /// What was being done (never a secret).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failure.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// Failure of the SQL facade over either backend ([`crate::storage::sql`]; no row data, no URL).
    #[error("database error: {0}")]
    Sql(#[from] crate::error::SqlError),
    /// The database was written by a newer server.
    #[error("database schema version {found} is newer than this server knows ({known})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// The key file is malformed.
    #[error("server key file is malformed: {0}")]
    KeyFile(&'static str),
    /// The TLS certificate or key could not be made or loaded.
    #[error("tls setup failed: {0}")]
    Tls(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No such user (the name is not repeated: it is personal data).
    #[error("no user with that name")]
    UnknownUser,
    /// A user with this name exists already.
    #[error("a user with this name exists already")]
    DuplicateUser,
    /// The user is deactivated.
    #[error("the user is deactivated")]
    UserInactive,
    /// No quarantined upload with that id.
    #[error("no quarantined upload with that id")]
    UnknownQuarantine,
    /// The quarantined upload was already released or discarded.
    #[error("that quarantined upload was already decided")]
    QuarantineDecided,
    /// No case with that id.
    #[error("no case with that id")]
    UnknownCase,
    /// The case exists but is not on any team of the person asking, and she holds no open
    /// break-glass read of it: need to know refuses it.
    #[error("that case belongs to a team you are not on")]
    OutsideTeam,
    /// The person's role does not allow what was asked (see [`crate::office::access`]).
    #[error("your role does not allow this")]
    NotAllowed,
    /// None of the identities given can open the backup (it was made for other recipients).
    #[error("none of the given identities opens this backup")]
    BackupKey,
    /// The backup is not one, or was cut short or changed since it was made.
    #[error("the backup is damaged: {0}")]
    BackupDamaged(&'static str),
    /// A restore would write into a folder that already holds something.
    #[error("the folder to restore into is not empty: {0}")]
    RestoreTarget(std::path::PathBuf),
    /// The key fingerprint typed does not match the device's key.
    #[error("that is not this device's key fingerprint")]
    FingerprintMismatch,
    /// `admin tls prepare` when a next certificate is already prepared.
    #[error(
        "a next certificate is already prepared (tls-cert.next.pem); rotate to it, or remove \
         both next files to abandon it"
    )]
    NextCertificateExists,
    /// `admin tls rotate` with no next certificate prepared.
    #[error("no next certificate is prepared: run admin tls prepare first")]
    NoNextCertificate,
    /// `admin tls prepare --from-previous` with no previous certificate kept.
    #[error("no previous certificate is kept (tls-cert.previous.pem): nothing to go back to")]
    NoPreviousCertificate,
    /// No team with that name or id.
    #[error("no team with that name")]
    UnknownTeam,
    /// A team with this name exists already.
    #[error("a team with this name exists already")]
    DuplicateTeam,
    /// A break-glass read needs a reason someone else can judge.
    #[error("a break-glass read needs a reason of {min} to {max} characters")]
    BreakGlassReason {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
    /// A core operation failed (validation, document, encryption).
    #[error("{0}")]
    Core(#[from] fieldcase_core::CoreError),
    /// A worker thread or task failed.
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// The case holds no such attachment (never added, or removed).
    #[error("the case holds no such attachment")]
    UnknownAttachment,
    /// The device's user is not assigned to the case.
    #[error("the device's user is not assigned to this case")]
    NotAssigned,
    /// An attachment chunk came before the one the office expects next.
    #[error("chunk out of order: the office expects chunk {expected}")]
    ChunkOutOfOrder {
        /// The chunk the office takes next.
        expected: u32,
    },
    /// An attachment chunk that cannot be taken; nothing was stored.
    #[error("chunk refused: {0}")]
    ChunkRefused(&'static str),
    /// The chunks of an attachment do not add up to its hash: all of them were dropped.
    #[error("the attachment's bytes do not match its hash; the upload starts again")]
    AttachmentHashMismatch,
    /// A whole upload that is not the kind of file its reference gives, or still holds metadata
    /// a phone removes: every chunk of it was dropped.
    #[error("attachment refused: {0}")]
    AttachmentRefused(&'static str),
    /// The office does not hold the whole attachment yet.
    #[error("the office does not hold this attachment yet")]
    AttachmentNotAtOffice,
    /// No device with that id.
    #[error("no device with that id")]
    UnknownDevice,
    /// A report's or an export's period (or its parameters) cannot be used; nothing was read.
    #[error("{0}")]
    BadPeriod(&'static str),
    /// An export's parameters or its output file cannot be used; nothing was written.
    #[error("{0}")]
    BadExport(&'static str),
    /// No alert with that id is shown to this person.
    #[error("no such alert")]
    UnknownAlert,
    /// A note asked for is not one the case holds (or more notes were asked for than a case
    /// file may hold).
    #[error("the case holds no such note")]
    UnknownNote,
    /// The field holds no conflict to resolve (someone may have resolved it already).
    #[error("that field holds no conflict (it may have been resolved already)")]
    NoConflict,
    /// The data folder holds no office (no key file, or no database on the embedded default).
    #[error(
        "no office in {}: create one there with `fieldcase-server --data DIR serve` (or `admin init`), or point --data at the office's data folder",
        .0.display()
    )]
    NoOffice(std::path::PathBuf),
    /// The audit log was asked to be verified through a database opened without the office's
    /// key, which its keyed chain needs.
    #[error("the audit log can be verified only with the office's key")]
    AuditKeyMissing,
    /// The change would leave no active admin.
    #[error("the last active admin cannot lose the admin role")]
    LastAdmin,
}

impl ServerError {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
        let what = what.into();
        move |source| ServerError::Io { what, source }
    }
}

/// Failures of the SQL facade, of either backend. None of them carries row data or secrets.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// SQLite failure (rusqlite's text names tables and constraints, never values).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failure: the SQLSTATE code and a description built only from names
    /// (constraint, table, column) or from our own SQL text, never from PostgreSQL's `DETAIL`.
    #[error("postgres {code}: {info}")]
    Postgres {
        /// SQLSTATE (five characters), or `"-----"` for a failure outside the database (I/O,
        /// connection closed, a parameter that does not fit its column).
        code: String,
        /// What went wrong, safe to log.
        info: String,
    },
    /// `query_row` found no row.
    #[error("the query returned no row")]
    NoRow,
    /// `query_opt` or `query_row` found more than one row.
    #[error("the query returned more than one row")]
    TooManyRows,
    /// A getter asked for a column the row does not have.
    #[error("no column {index} (the row has {len})")]
    NoColumn {
        /// Column asked for (0-based).
        index: usize,
        /// Columns in the row.
        len: usize,
    },
    /// A getter found a value of another type than it reads.
    #[error("column {index} holds {found}, not {expected}")]
    ColumnType {
        /// Column (0-based).
        index: usize,
        /// What the getter reads.
        expected: &'static str,
        /// What the column holds.
        found: &'static str,
    },
    /// PostgreSQL returned a column of a type the facade does not read (say `NUMERIC` from
    /// `sum`: cast it to `BIGINT`).
    #[error("column {index} has PostgreSQL type {type_name}, which the facade does not read")]
    UnsupportedType {
        /// Column (0-based).
        index: usize,
        /// PostgreSQL's name of the type.
        type_name: String,
    },
    /// The SQL text is not in the portable dialect (a bare `?`, `?0`, an unterminated literal).
    #[error("sql text: {0}")]
    Dialect(&'static str),
    /// No pooled PostgreSQL connection became free in time, or the pool's lock was poisoned.
    #[error("connection pool: {0}")]
    Pool(&'static str),
    /// A value was refused before it reached the database (say an audit detail too long).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The database configuration is unusable (the reason never repeats the URL).
    #[error("database configuration: {0}")]
    Config(&'static str),
    /// The CA file of `sslmode=verify-full` (`sslrootcert`) cannot be read or holds no usable
    /// certificate.
    #[error("database configuration: the CA file {} {problem}", .path.display())]
    CaFile {
        /// The file, as the URL names it.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS handshake with PostgreSQL failed: its certificate was not accepted (not signed
    /// by the configured CA, not naming the host, expired) or the handshake itself failed.
    /// Nothing was sent to the server beyond the handshake.
    #[error("TLS to the database failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The URL asks for TLS, but the PostgreSQL server answered that it does not offer it.
    #[error("the database server does not offer TLS, which the URL's sslmode asks for")]
    TlsNotOffered,
}
