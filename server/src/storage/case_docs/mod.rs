//! How the office keeps case documents: a sealed snapshot per case (`cases.doc`) followed by the
//! sealed change chunks stored since (`case_chunks`), and the decrypted documents of recently
//! used cases kept in memory.
//!
//! Why: a sync that adds one note to a case used to load the whole document, re-encode it and
//! seal it again, so the office's cost per sync grew with the size of the case. Now a store
//! appends only the new changes (compacted into a new snapshot once they pile up), and a case
//! that was used recently is not loaded at all. The in-memory copy is taken only when its heads
//! equal the heads stored beside the case, and heads name a document's content exactly (they are
//! hashes of its change graph): a copy that another process, another server instance or a
//! rolled-back transaction made different can never be mistaken for the stored one.
//!
//! A document is *taken out* of the cache for one transaction (`checkout`) and given back only
//! after that transaction committed ([`CaseVault::keep`]), so memory never runs ahead of the disk:
//! a request that fails drops what it holds. Functions that store cases inside a caller's
//! transaction hand the documents back in a [`WithDocs`], which the caller gives to the vault
//! once the transaction committed.
//!
//! With several server instances on one PostgreSQL database each instance has its own memory;
//! the heads check is what keeps that safe. Each store also sends `NOTIFY fieldcase_cases`
//! (delivered at commit) so that the other instances' live pages hear of it
//! (`storage::live_notify`).

mod cache;
mod sealed;
mod vault;

pub use cache::{CACHE_DOCS, CACHE_OPS, LoadedCase};
pub use sealed::backfill_index;
pub(crate) use sealed::replace_content;
pub use sealed::{CASES_CHANNEL, MAX_CHUNKS};
pub(crate) use sealed::{
    checkout, checkout_for_sync, heads_text, parse_heads, store, whole_snapshot,
};
pub use vault::{CaseVault, WithDocs, new_epoch};
