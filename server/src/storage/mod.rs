//! Storage: where the office's data lives and in what form. The SQL facade over both backends
//! (SQLite, the embedded default, and PostgreSQL) with their migrations; case documents at rest
//! (sealed snapshots and change chunks) and the decrypted copies kept in memory; the key file;
//! the data folder; PostgreSQL's change notifications; the report index kept beside the cases.
//!
//! Must not: know who may do what (the office layer decides), speak HTTP, or import anything
//! from `office` or `http`.

pub mod case_docs;
pub mod data_dir;
pub mod keys;
pub(crate) mod live_notify;
pub mod phases;
pub mod report_index;
pub mod sql;
pub mod testing;
